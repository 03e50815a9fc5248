//! [`Sequential`]: layers applied in order, Equinox's `eqx.nn.Sequential`;
//! and [`Layer`], what a layer of a `Sequential` is.
//!
//! ```text
//! y = layers[n-1](... layers[1](layers[0](x)))
//! ```
//!
//! With a key, it is split into one key per layer, layer `i` getting the
//! `i`-th, as Equinox does; layers that draw nothing ignore theirs.
//!
//! **Why the layers are a tuple, a `Vec` or boxed layers.** A `Sequential`
//! must stay a tree: its leaves visited in order, its gradient of its own
//! type. So it is generic over the container of layers, [`Layers`]:
//!
//! - a tuple, `Sequential<(Linear, Lambda, Linear)>`: each layer keeps its
//!   type, so `seq.layers.0.weight` is reachable directly and the gradient
//!   is typed the same way. This is the usual choice.
//! - a `Vec<L>` of one layer type, for a stack of identical blocks.
//! - a `Vec<BoxedLayer>`: any mix of layers decided at run time, each boxed
//!   behind the object-safe part of [`Layer`] and [`Tree`]; reach one with
//!   [`BoxedLayer::downcast_ref`].
//!
//! # Examples
//!
//! ```
//! use solstice::{Array, filter_grad, nn::{Activation, Lambda, Linear, Sequential}, random::Key};
//! # fn main() -> solstice::Result<()> {
//! let [k1, k2] = Key::new(0).split();
//! let model = Sequential::new((
//!     Linear::new(3, 4, k1)?,
//!     Lambda::new(Activation::relu()),
//!     Linear::new(4, 2, k2)?,
//! ));
//! let x = Array::from_vec(vec![1.0f32, -1.0, 0.5], &[3])?;
//! let y = model.forward(&x)?;
//! let by_hand = model.layers.2.forward(&model.layers.0.forward(&x)?.relu()?)?;
//! assert_eq!(y.to_vec::<f32>()?, by_hand.to_vec::<f32>()?);
//! // The gradient has the model's type.
//! let grads = filter_grad(|m: &Sequential<_>, x: &Array| m.forward(x)?.sum_all())(&model, &x)?;
//! assert_eq!(grads.layers.0.weight.shape(), &[4, 3]);
//! assert_eq!(model.len(), 3);
//! # Ok(()) }
//! ```

use std::any::Any;
use std::fmt;

use crate::Module;
use crate::array::Array;
use crate::error::Result;
use crate::random::Key;
use crate::tree::{KeyPath, Structure, Tree};

use super::{
    Dropout, Embedding, Identity, Lambda, LayerNorm, Linear, Mlp, RmsNorm,
    RotaryPositionalEmbedding,
};

/// A layer on one example: what [`Sequential`] chains.
///
/// A layer that draws nothing implements [`call`](Layer::call) only; the
/// provided [`call_with_key`](Layer::call_with_key) then ignores its key, as
/// Equinox layers ignore their `key` argument. A layer that draws random
/// numbers ([`Dropout`]) implements both, and its `call` says that it needs
/// a key (or runs in inference mode).
pub trait Layer: Tree {
    /// The layer on `x`, drawing nothing.
    fn call(&self, x: &Array) -> Result<Array>;

    /// The layer on `x`, drawing from `key` if it draws at all.
    fn call_with_key(&self, x: &Array, key: Key) -> Result<Array> {
        let _ = key;
        self.call(x)
    }
}

/// The layers of a [`Sequential`]: tuples of up to eight [`Layer`]s, a
/// `Vec` or an array of one layer type, or a `Vec<BoxedLayer>`.
pub trait Layers: Tree {
    /// How many layers there are.
    fn count(&self) -> usize;

    /// `x` through every layer in order; with keys, layer `i` gets
    /// `keys[i]`, and there are [`count`](Layers::count) of them.
    fn chain(&self, x: &Array, keys: Option<&[Key]>) -> Result<Array>;
}

/// Layers applied in order. See the [module docs](self).
#[derive(Module)]
pub struct Sequential<L> {
    /// The layers, first to last.
    pub layers: L,
}

impl<L: Layers> Sequential<L> {
    /// The layers in order.
    pub fn new(layers: L) -> Self {
        Sequential { layers }
    }

    /// `x` through every layer, none of which may draw random numbers: a
    /// [`Dropout`] not in inference mode fails and names its layer. See
    /// [`forward_with_key`](Self::forward_with_key).
    ///
    /// ```
    /// use solstice::{Array, DType, nn::{Identity, Linear, Sequential}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let model = Sequential::new((Identity::new(), Linear::new(2, 3, Key::new(0))?));
    /// assert_eq!(model.forward(&Array::ones(&[2], DType::F32)?)?.shape(), &[3]);
    /// # Ok(()) }
    /// ```
    pub fn forward(&self, x: &Array) -> Result<Array> {
        self.layers.chain(x, None)
    }

    /// `x` through every layer, `key` split into one key per layer as
    /// Equinox splits it: layer `i` gets the `i`-th.
    ///
    /// # Examples
    ///
    /// ```
    /// use solstice::{Array, DType, nn::{Dropout, Identity, Sequential}, random::Key};
    /// # fn main() -> solstice::Result<()> {
    /// let model = Sequential::new((Identity::new(), Dropout::new(0.5)?));
    /// let x = Array::ones(&[6], DType::F32)?;
    /// let y = model.forward_with_key(&x, Key::new(0))?;
    /// // The dropout, second of two layers, got the second key of the split.
    /// let [_, second] = Key::new(0).split();
    /// let by_hand = Dropout::new(0.5)?.forward(&x, second)?;
    /// assert_eq!(y.to_vec::<f32>()?, by_hand.to_vec::<f32>()?);
    /// // Without a key the dropout fails, and the error names the layer.
    /// let err = model.forward(&x).unwrap_err();
    /// assert!(err.to_string().starts_with("in Sequential layer 1: Dropout::forward needs a key"));
    /// # Ok(()) }
    /// ```
    pub fn forward_with_key(&self, x: &Array, key: Key) -> Result<Array> {
        let keys = key.split_n(self.layers.count());
        self.layers.chain(x, Some(&keys))
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.count()
    }

    /// Whether there are no layers (then `forward` is the identity).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Layer `i` on `x`, with its key if there are keys; an error names the
/// layer.
fn call_layer<L: Layer>(layer: &L, x: &Array, keys: Option<&[Key]>, i: usize) -> Result<Array> {
    match keys {
        Some(keys) => layer.call_with_key(x, keys[i].clone()),
        None => layer.call(x),
    }
    .map_err(|e| e.context(format!("in Sequential layer {i}")))
}

impl<L: Layer> Layers for Vec<L> {
    fn count(&self) -> usize {
        self.len()
    }

    fn chain(&self, x: &Array, keys: Option<&[Key]>) -> Result<Array> {
        let mut x = x.clone();
        for (i, layer) in self.iter().enumerate() {
            x = call_layer(layer, &x, keys, i)?;
        }
        Ok(x)
    }
}

impl<L: Layer, const N: usize> Layers for [L; N] {
    fn count(&self) -> usize {
        N
    }

    fn chain(&self, x: &Array, keys: Option<&[Key]>) -> Result<Array> {
        let mut x = x.clone();
        for (i, layer) in self.iter().enumerate() {
            x = call_layer(layer, &x, keys, i)?;
        }
        Ok(x)
    }
}

macro_rules! tuple_layers {
    ($n:expr; $($name:ident $idx:tt),*) => {
        impl<$($name: Layer),*> Layers for ($($name,)*) {
            fn count(&self) -> usize {
                $n
            }

            fn chain(&self, x: &Array, keys: Option<&[Key]>) -> Result<Array> {
                let x = x.clone();
                $(let x = call_layer(&self.$idx, &x, keys, $idx)?;)*
                Ok(x)
            }
        }
    };
}

tuple_layers!(1; A 0);
tuple_layers!(2; A 0, B 1);
tuple_layers!(3; A 0, B 1, C 2);
tuple_layers!(4; A 0, B 1, C 2, D 3);
tuple_layers!(5; A 0, B 1, C 2, D 3, E 4);
tuple_layers!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_layers!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_layers!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Any [`Layer`], boxed, so that layers of different types can share a
/// `Vec`. It is a tree like the layer inside, prints like it, and is
/// differentiated like it.
///
/// # Examples
///
/// ```
/// use solstice::{Array, nn::{BoxedLayer, Dropout, Linear, Sequential}, random::Key};
/// # fn main() -> solstice::Result<()> {
/// let mut layers = vec![BoxedLayer::new(Linear::new(2, 2, Key::new(0))?)];
/// layers.push(BoxedLayer::new(Dropout::new(0.5)?));
/// let model = Sequential::new(layers);
/// let y = model.forward_with_key(&Array::ones(&[2], solstice::DType::F32)?, Key::new(1))?;
/// assert_eq!(y.shape(), &[2]);
/// let first = model.layers[0].downcast_ref::<Linear>().unwrap();
/// assert_eq!(first.weight.shape(), &[2, 2]);
/// # Ok(()) }
/// ```
pub struct BoxedLayer(Box<dyn ErasedLayer + Send + Sync>);

impl BoxedLayer {
    /// Boxes `layer`. A boxed layer is `Send` and `Sync`, as every layer of
    /// solstice is, so a model holding one can move to another thread.
    pub fn new<L: Layer + Send + Sync + 'static>(layer: L) -> Self {
        BoxedLayer(Box::new(layer))
    }

    /// The layer inside, if it is an `L`.
    pub fn downcast_ref<L: Layer + 'static>(&self) -> Option<&L> {
        self.0.as_any().downcast_ref()
    }
}

/// The object-safe part of `Layer + Tree + Clone`.
trait ErasedLayer {
    fn clone_box(&self) -> Box<dyn ErasedLayer + Send + Sync>;
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>));
    fn visit_leaves_mut(
        &mut self,
        path: &mut KeyPath,
        f: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    );
    fn structure(&self) -> Structure;
    fn call(&self, x: &Array) -> Result<Array>;
    fn call_with_key(&self, x: &Array, key: Key) -> Result<Array>;
    fn as_any(&self) -> &dyn Any;
}

impl<L: Layer + Send + Sync + 'static> ErasedLayer for L {
    fn clone_box(&self) -> Box<dyn ErasedLayer + Send + Sync> {
        Box::new(self.clone())
    }

    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>)) {
        Tree::visit_leaves(self, path, f)
    }

    fn visit_leaves_mut(
        &mut self,
        path: &mut KeyPath,
        f: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    ) {
        Tree::visit_leaves_mut(self, path, f)
    }

    fn structure(&self) -> Structure {
        Tree::structure(self)
    }

    fn call(&self, x: &Array) -> Result<Array> {
        Layer::call(self, x)
    }

    fn call_with_key(&self, x: &Array, key: Key) -> Result<Array> {
        Layer::call_with_key(self, x, key)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Clone for BoxedLayer {
    fn clone(&self) -> Self {
        BoxedLayer(self.0.clone_box())
    }
}

impl Tree for BoxedLayer {
    fn visit_leaves(&self, path: &mut KeyPath, f: &mut dyn FnMut(&KeyPath, crate::tree::Leaf<'_>)) {
        self.0.visit_leaves(path, f)
    }

    fn visit_leaves_mut(
        &mut self,
        path: &mut KeyPath,
        f: &mut dyn FnMut(&KeyPath, crate::tree::LeafMut<'_>),
    ) {
        self.0.visit_leaves_mut(path, f)
    }

    fn structure(&self) -> Structure {
        self.0.structure()
    }
}

impl Layer for BoxedLayer {
    fn call(&self, x: &Array) -> Result<Array> {
        self.0.call(x)
    }

    fn call_with_key(&self, x: &Array, key: Key) -> Result<Array> {
        self.0.call_with_key(x, key)
    }
}

impl fmt::Debug for BoxedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Tree::structure(self).pformat())
    }
}

impl<L: Layers> Layer for Sequential<L> {
    fn call(&self, x: &Array) -> Result<Array> {
        self.forward(x)
    }

    fn call_with_key(&self, x: &Array, key: Key) -> Result<Array> {
        self.forward_with_key(x, key)
    }
}

impl Layer for Dropout {
    fn call(&self, x: &Array) -> Result<Array> {
        self.apply(x, None, false)
    }

    fn call_with_key(&self, x: &Array, key: Key) -> Result<Array> {
        self.apply(x, Some(key), false)
    }
}

/// `Layer` for the layers whose `forward` takes the input alone.
macro_rules! keyless_layer {
    ($($t:ty),*) => {$(
        impl Layer for $t {
            fn call(&self, x: &Array) -> Result<Array> {
                self.forward(x)
            }
        }
    )*};
}

keyless_layer!(
    Linear,
    Embedding,
    Mlp,
    LayerNorm,
    RmsNorm,
    RotaryPositionalEmbedding,
    Identity,
    Lambda
);
