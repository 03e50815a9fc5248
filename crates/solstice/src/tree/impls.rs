//! [`Tree`] for the standard containers, scalars and [`Array`].

use super::{KeyPath, PathKey, Structure, Tree};
use crate::array::{Array, Hole};

impl Tree for Array {
    fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
        f(path, self)
    }

    fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
        f(path, self)
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
    fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
        if let Some(x) = self {
            x.visit(path, f)
        }
    }

    fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
        if let Some(x) = self {
            x.visit_mut(path, f)
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
    fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
        (**self).visit(path, f)
    }

    fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
        (**self).visit_mut(path, f)
    }

    fn structure(&self) -> Structure {
        (**self).structure()
    }
}

fn visit_seq<'a, T: Tree + 'a>(
    items: impl Iterator<Item = &'a T>,
    path: &mut KeyPath,
    f: &mut dyn FnMut(&KeyPath, &Array),
) {
    for (i, x) in items.enumerate() {
        path.push(PathKey::Index(i));
        x.visit(path, f);
        path.pop();
    }
}

fn visit_seq_mut<'a, T: Tree + 'a>(
    items: impl Iterator<Item = &'a mut T>,
    path: &mut KeyPath,
    f: &mut dyn FnMut(&KeyPath, &mut Array),
) {
    for (i, x) in items.enumerate() {
        path.push(PathKey::Index(i));
        x.visit_mut(path, f);
        path.pop();
    }
}

impl<T: Tree> Tree for Vec<T> {
    fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
        visit_seq(self.iter(), path, f)
    }

    fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
        visit_seq_mut(self.iter_mut(), path, f)
    }

    fn structure(&self) -> Structure {
        Structure::List(self.iter().map(Tree::structure).collect())
    }
}

impl<T: Tree, const N: usize> Tree for [T; N] {
    fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
        visit_seq(self.iter(), path, f)
    }

    fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
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
            fn visit(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &Array)) {
                $(
                    path.push(PathKey::Index($idx));
                    self.$idx.visit(path, f);
                    path.pop();
                )*
            }

            #[allow(unused_variables)]
            fn visit_mut(&mut self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, &mut Array)) {
                $(
                    path.push(PathKey::Index($idx));
                    self.$idx.visit_mut(path, f);
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
/// but never touched by `grad`, `vmap` or filters.
macro_rules! scalar_tree {
    ($($t:ty),*) => {$(
        impl Tree for $t {
            fn visit(&self, _: &mut KeyPath, _: &mut dyn FnMut(&KeyPath, &Array)) {}

            fn visit_mut(&mut self, _: &mut KeyPath, _: &mut dyn FnMut(&KeyPath, &mut Array)) {}

            fn structure(&self) -> Structure {
                Structure::Scalar(format!("{self:?}"))
            }
        }
    )*};
}

scalar_tree!(
    f32, f64, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool, String
);
