//! `eval_shape`: functions run on shapes and dtypes alone, nesting with
//! `vmap` and `grad`, and `Shared::new` checking its tie without data.

use solstice::__private::record_kernels;
use solstice::nn::{Embedding, Linear, Mlp, Shared};
use solstice::random::Key;
use solstice::tree::{Structure, tree_leaves};
use solstice::{Array, DType, Result, Tree, eval_shape, filter_grad, grad, vmap};

fn f32s(shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    Array::from_vec((0..n).map(|i| i as f32 * 0.1).collect(), shape).unwrap()
}

/// Every array leaf of `tree` is a stand-in, and the structures agree.
fn assert_abstract_like<T: Tree>(got: &T, want: &Structure) {
    assert_eq!(&got.structure(), want);
    for leaf in tree_leaves(got) {
        assert!(leaf.is_shape_dtype(), "{leaf:?} is not a stand-in");
    }
}

#[test]
fn a_layer_too_large_to_allocate_is_built_abstractly_and_runs_no_kernel() {
    // 10^10 f32 weights (40 GB): eagerly this is an out-of-memory error.
    let eager = Linear::new(100_000, 100_000, Key::new(0));
    assert!(eager.unwrap_err().is_out_of_memory());

    let (big, kernels) = record_kernels(|| {
        eval_shape(
            |key: &Key| Linear::new(100_000, 100_000, key.clone()),
            &Key::new(0),
        )
    });
    let big = big.unwrap();
    assert_eq!(kernels, Vec::<&str>::new(), "no kernel may run");
    assert_eq!(big.weight.shape(), &[100_000, 100_000]);
    assert_eq!(big.weight.dtype(), DType::F32);
    assert!(big.weight.is_shape_dtype());
    let bias = big.bias.as_ref().unwrap();
    assert_eq!(bias.short_description(), "f32[100000]");
    assert!(
        format!("{big:?}").contains("weight=f32[100000,100000]"),
        "{big:?}"
    );

    // The same structure as the real layer, at a size that fits.
    let small = Linear::new(3, 4, Key::new(0)).unwrap();
    let abstract_small = eval_shape(|k: &Key| Linear::new(3, 4, k.clone()), &Key::new(0)).unwrap();
    assert_abstract_like(&abstract_small, &small.structure());
}

#[test]
fn a_model_built_and_run_abstractly_gives_the_eager_structures() {
    let build = |key: &Key| Mlp::new(5, 3, 8, 2, key.clone());
    let x = f32s(&[5]);
    let eager_model = build(&Key::new(1)).unwrap();
    let eager_out = eager_model.forward(&x).unwrap();
    let ((model, out), kernels) = record_kernels(|| {
        eval_shape(
            |(key, x): &(Key, Array)| -> Result<(Mlp, Array)> {
                let m = build(key)?;
                let y = m.forward(x)?;
                Ok((m, y))
            },
            &(Key::new(1), x.clone()),
        )
        .unwrap()
    });
    assert!(kernels.is_empty(), "{kernels:?}");
    assert_abstract_like(&model, &eager_model.structure());
    assert_eq!(out.short_description(), eager_out.short_description());
    assert!(out.is_shape_dtype());
}

type Op<'a> = dyn Fn(&Array) -> Result<Array> + 'a;

#[test]
fn shape_errors_are_those_of_the_eager_run() {
    let linear = Linear::new(3, 4, Key::new(0)).unwrap();
    let cases: Vec<(Array, Box<Op>)> = vec![
        (f32s(&[5]), Box::new(|x: &Array| linear.forward(x))),
        (f32s(&[2, 3]), Box::new(|x: &Array| x.matmul(x))),
        (f32s(&[2, 3]), Box::new(|x: &Array| x.add(&f32s(&[2])))),
        (f32s(&[2, 3]), Box::new(|x: &Array| x.reshape(&[7]))),
        (f32s(&[2, 3]), Box::new(|x: &Array| x.sum(&[2]))),
        (
            f32s(&[2, 3]),
            Box::new(|x: &Array| x.astype(DType::I32)?.exp()),
        ),
        (
            f32s(&[2, 3]),
            Box::new(|x: &Array| x.softmax_cross_entropy(x)),
        ),
    ];
    for (x, f) in cases {
        let eager = f(&x).unwrap_err();
        let shaped = Array::shape_dtype(x.shape(), x.dtype());
        let abstract_ = eval_shape(|x: &Array| f(x), &shaped).unwrap_err();
        assert_eq!(abstract_.to_string(), eager.to_string());
        assert_eq!(abstract_.is_shape_mismatch(), eager.is_shape_mismatch());
        assert_eq!(abstract_.is_dtype_mismatch(), eager.is_dtype_mismatch());
    }
}

#[test]
fn values_cannot_be_read_abstractly_and_stand_ins_are_not_values() {
    let x = Array::shape_dtype(&[2], DType::F32);
    let err = eval_shape(
        |x: &Array| -> Result<Array> { x.to_vec::<f32>().map(|_| x.clone()) },
        &x,
    )
    .unwrap_err();
    assert!(err.to_string().contains("eval_shape"), "{err}");
    let err = x.exp().unwrap_err();
    assert!(err.to_string().contains("ShapeDtypeStruct"), "{err}");
    assert!(x.to_vec::<f32>().is_err());
}

#[test]
fn eval_shape_of_vmap_batches_shapes() {
    let linear = Linear::new(3, 4, Key::new(0)).unwrap();
    let xs = Array::shape_dtype(&[1000, 3], DType::F32);
    let (ys, kernels) = record_kernels(|| {
        eval_shape(
            |xs: &Array| vmap(|x: &Array| linear.forward(x)?.tanh())(xs),
            &xs,
        )
        .unwrap()
    });
    assert!(kernels.is_empty(), "{kernels:?}");
    assert_eq!(ys.short_description(), "f32[1000,4]");
    // A shape error inside vmap is the eager one too.
    let bad = Array::shape_dtype(&[10, 5], DType::F32);
    let abstract_ = eval_shape(|xs: &Array| vmap(|x: &Array| linear.forward(x))(xs), &bad);
    let eager = vmap(|x: &Array| linear.forward(x))(&f32s(&[10, 5]));
    assert_eq!(
        abstract_.unwrap_err().to_string(),
        eager.unwrap_err().to_string()
    );
}

#[test]
fn eval_shape_of_grad_gives_the_gradient_structure() {
    let loss = |m: &Mlp, x: &Array| m.forward(x)?.square()?.sum_all();
    let model = Mlp::new(5, 3, 8, 2, Key::new(2)).unwrap();
    let eager = filter_grad(loss)(&model, &f32s(&[5])).unwrap();
    let (grads, kernels) = record_kernels(|| {
        eval_shape(
            |(m, x): &(Mlp, Array)| filter_grad(loss)(m, x),
            &(model.clone(), f32s(&[5])),
        )
        .unwrap()
    });
    assert!(kernels.is_empty(), "{kernels:?}");
    assert_abstract_like(&grads, &eager.structure());

    // A large embedding under grad: its zero-initialised gradient is not
    // allocated either.
    let (g, kernels) = record_kernels(|| {
        eval_shape(
            |key: &Key| {
                let table = Embedding::new(200_000, 50_000, key.clone())?;
                let f = |t: &Embedding| t.forward(&Array::scalar(3i32)?)?.sum_all();
                filter_grad(|t: &Embedding, _: &()| f(t))(&table, &())
            },
            &Key::new(3),
        )
        .unwrap()
    });
    assert!(kernels.is_empty(), "{kernels:?}");
    assert_eq!(g.weight.short_description(), "f32[200000,50000]");

    // Scalar grad of grad, and grad of vmap.
    let x = Array::shape_dtype(&[], DType::F64);
    let d2 = eval_shape(|x: &Array| grad(grad(|x: &Array| x.exp()?.sin()))(x), &x).unwrap();
    assert_eq!(d2.short_description(), "f64[]");
    let xs = Array::shape_dtype(&[6], DType::F32);
    let per_example = eval_shape(
        |xs: &Array| vmap(grad(|x: &Array| x.tanh()?.mul_scalar(2.0)))(xs),
        &xs,
    )
    .unwrap();
    assert_eq!(per_example.short_description(), "f32[6]");
}

#[test]
fn shared_new_checks_its_tie_without_running_get_on_data() {
    let [k1, k2] = Key::new(0).split();
    let pair = (
        Embedding::new(11, 6, k1).unwrap(),
        Linear::new(6, 11, k2).unwrap(),
    );
    // `get` transposes: building the tie must run no kernel.
    let (shared, kernels) = record_kernels(|| {
        Shared::new(pair.clone(), |p| &mut p.1.weight, |p| p.0.weight.t()?.t()).map(|_| ())
    });
    shared.unwrap();
    assert!(kernels.is_empty(), "Shared::new ran {kernels:?}");

    // Still rejected: a get that reads the node `where` removes ...
    let err = Shared::new(pair.clone(), |p| &mut p.1.weight, |p| p.1.weight.t()?.t())
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with(
            "Shared::new: `get` reads the node that `where` removes (.pytree[1].weight)"
        ),
        "{err}"
    );
    // ... and one of the wrong shape.
    let err = Shared::new(pair.clone(), |p| &mut p.1.weight, |p| p.0.weight.t())
        .err()
        .unwrap();
    assert!(err.to_string().contains("same pytree structure"), "{err}");

    // A tie of arrays too large to allocate, built under eval_shape.
    let tied = eval_shape(
        |key: &Key| {
            let [k1, k2] = key.split();
            let pair = (
                Embedding::new(200_000, 4096, k1)?,
                Linear::new(4096, 200_000, k2)?,
            );
            let shared = Shared::new(pair, |p| &mut p.1.weight, |p| p.0.weight.clone())?;
            shared.call()
        },
        &Key::new(5),
    )
    .unwrap();
    assert_eq!(tied.1.weight.short_description(), "f32[200000,4096]");
}

#[test]
fn custom_vjp_and_holes_pass_through_eval_shape() {
    use solstice::custom_vjp;
    let f = custom_vjp(
        |x: &Array| x.sum(&[0])?.exp(),
        |_x: &Array, _y: &Array, ct: &Array| ct.broadcast_to(&[4, 3]),
    );
    let x = Array::shape_dtype(&[4, 3], DType::F32);
    let (y, kernels) = record_kernels(|| eval_shape(|x: &Array| f(x), &x).unwrap());
    assert!(kernels.is_empty(), "{kernels:?}");
    assert_eq!(y.short_description(), "f32[3]");
    let g = eval_shape(|x: &Array| grad(|x: &Array| f(x)?.sum_all())(x), &x).unwrap();
    assert_eq!(g.short_description(), "f32[4,3]");

    // Holes stay holes, in the input and the output.
    let args = (Array::absent(), Array::shape_dtype(&[2], DType::F64));
    let (hole, doubled) = eval_shape(
        |(a, b): &(Array, Array)| -> Result<(Array, Array)> {
            assert!(a.is_absent());
            Ok((a.clone(), b.mul_scalar(2.0)?))
        },
        &args,
    )
    .unwrap();
    assert!(hole.is_absent());
    assert_eq!(doubled.short_description(), "f64[2]");
}
