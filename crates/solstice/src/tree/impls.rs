//! [`Tree`] for the standard containers, scalars and [`Array`].

use super::{KeyPath, Leaf, LeafMut, PathKey, Structure, Tree};
use crate::array::{Array, Hole};

impl Tree for Array {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
        f(path, Leaf::Array(self))
    }

    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
        f(path, LeafMut::Array(self))
    }

    fn structure(&self) -> Structure {
        match self.hole_kind() {
            Some(Hole::Absent) => Structure::Absent,
            Some(Hole::Placeholder) => Structure::Placeholder,
            None => Structure::Array {
                dtype: self.dtype(),
                shape: self.shape().to_vec(),
            },
        }
    }
}

/// `None` is an empty node and `Some(x)` is `x`, as in JAX.
impl<T: Tree> Tree for Option<T> {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
        if let Some(x) = self {
            x.visit_leaves(path, f)
        }
    }

    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
        if let Some(x) = self {
            x.visit_leaves_mut(path, f)
        }
    }

    fn structure(&self) -> Structure {
        match self {
            Some(x) => x.structure(),
            None => Structure::None,
        }
    }
}

impl<T: Tree> Tree for Box<T> {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
        (**self).visit_leaves(path, f)
    }

    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
        (**self).visit_leaves_mut(path, f)
    }

    fn structure(&self) -> Structure {
        (**self).structure()
    }
}

fn visit_seq<'a, T: Tree + 'a>(
    items: impl Iterator<Item = &'a T>,
    path: &mut KeyPath,
    f: &mut dyn FnMut(&KeyPath, Leaf<'_>),
) {
    for (i, x) in items.enumerate() {
        path.push(PathKey::Index(i));
        x.visit_leaves(path, f);
        path.pop();
    }
}

fn visit_seq_mut<'a, T: Tree + 'a>(
    items: impl Iterator<Item = &'a mut T>,
    path: &mut KeyPath,
    f: &mut dyn FnMut(&KeyPath, LeafMut<'_>),
) {
    for (i, x) in items.enumerate() {
        path.push(PathKey::Index(i));
        x.visit_leaves_mut(path, f);
        path.pop();
    }
}

impl<T: Tree> Tree for Vec<T> {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
        visit_seq(self.iter(), path, f)
    }

    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
        visit_seq_mut(self.iter_mut(), path, f)
    }

    fn structure(&self) -> Structure {
        Structure::List(self.iter().map(Tree::structure).collect())
    }
}

impl<T: Tree, const N: usize> Tree for [T; N] {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
        visit_seq(self.iter(), path, f)
    }

    fn visit_leaves_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {
        visit_seq_mut(self.iter_mut(), path, f)
    }

    fn structure(&self) -> Structure {
        Structure::List(self.iter().map(Tree::structure).collect())
    }
}

macro_rules! tuple_tree {
    ($($name:ident $idx:tt),*) => {
        impl<$($name: Tree),*> Tree for ($($name,)*) {
            #[allow(unused_variables)]
            fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
                $(
                    path.push(PathKey::Index($idx));
                    self.$idx.visit_leaves(path, f);
                    path.pop();
                )*
            }

            #[allow(unused_variables)]
            fn visit_leaves_mut(
                &mut self,
                path: &mut KeyPath,
                f: &mut dyn FnMut(&KeyPath, LeafMut<'_>),
            ) {
                $(
                    path.push(PathKey::Index($idx));
                    self.$idx.visit_leaves_mut(path, f);
                    path.pop();
                )*
            }

            fn structure(&self) -> Structure {
                Structure::Tuple(vec![$(self.$idx.structure()),*])
            }
        }
    };
}

tuple_tree!();
tuple_tree!(A 0);
tuple_tree!(A 0, B 1);
tuple_tree!(A 0, B 1, C 2);
tuple_tree!(A 0, B 1, C 2, D 3);
tuple_tree!(A 0, B 1, C 2, D 3, E 4);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_tree!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Scalars are non-array leaves: part of the structure, with their value,
/// and visited by [`Tree::visit_leaves`], but never touched by `grad`,
/// `vmap` or filters.
macro_rules! scalar_tree {
    ($($t:ty),*) => {$(
        impl Tree for $t {
            fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {
                f(path, Leaf::Scalar(self))
            }

            fn visit_leaves_mut(
                &mut self,
                path: &mut KeyPath,
                f: &mut dyn FnMut(&KeyPath, LeafMut<'_>),
            ) {
                f(path, LeafMut::Scalar(self))
            }

            fn structure(&self) -> Structure {
                Structure::Scalar(format!("{self:?}"))
            }
        }
    )*};
}

scalar_tree!(
    f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool
);

/// A string is structure, not a leaf: Equinox's serialisation skips it too.
impl Tree for String {
    fn visit_leaves(&self, _: &mut KeyPath, _: &mut dyn FnMut(&KeyPath, Leaf<'_>)) {}

    fn visit_leaves_mut(&mut self, _: &mut KeyPath, _: &mut dyn FnMut(&KeyPath, LeafMut<'_>)) {}

    fn structure(&self) -> Structure {
        Structure::Scalar(format!("{self:?}"))
    }
}
