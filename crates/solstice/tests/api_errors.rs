//! Messages that point at the actual mistake, and errors that keep their
//! cause.

use solstice::{Array, DType, grad, vmap};

#[test]
fn batched_matmul_with_different_batch_dimensions_says_so() {
    let a = Array::zeros(&[2, 3, 4], DType::F32).unwrap();
    let b = Array::zeros(&[5, 4, 2], DType::F32).unwrap();
    let err = a.matmul(&b).unwrap_err();
    assert!(err.is_shape_mismatch());
    assert_eq!(
        err.to_string(),
        "matmul got shapes [2, 3, 4] and [5, 4, 2], whose batch dimensions [2] and [5] do not \
         broadcast"
    );
    // A real inner mismatch is still reported as one.
    let c = Array::zeros(&[2, 5, 2], DType::F32).unwrap();
    assert!(
        a.matmul(&c)
            .unwrap_err()
            .to_string()
            .contains("inner dimensions differ")
    );
}

#[test]
fn softmax_of_integers_asks_for_a_float() {
    let x = Array::from_vec(vec![1i32, 2, 3], &[3]).unwrap();
    for err in [
        x.softmax(-1).unwrap_err(),
        x.log_softmax(-1).unwrap_err(),
        x.logsumexp(-1).unwrap_err(),
    ] {
        assert!(err.is_dtype_mismatch());
        assert!(
            err.to_string()
                .contains("needs a float array but got i32[3]"),
            "{err}"
        );
    }
}

#[test]
fn a_tracer_sent_to_another_thread_is_reported_as_such() {
    let xs = Array::ones(&[2, 3], DType::F32).unwrap();
    let err =
        vmap(|x: &Array| std::thread::scope(|s| s.spawn(|| x.exp()).join().expect("no panic")))(
            &xs,
        )
        .unwrap_err();
    assert!(err.is_transform());
    assert!(err.to_string().contains("used on another thread"), "{err}");
    // Kept after its transformation on the same thread: the other message.
    let kept = std::cell::RefCell::new(None);
    grad(|x: &Array| {
        *kept.borrow_mut() = Some(x.clone());
        x.sum_all()
    })(&Array::scalar(1.0f32).unwrap())
    .unwrap();
    let err = kept.take().unwrap().exp().unwrap_err();
    assert!(
        err.to_string()
            .contains("used after its transformation returned"),
        "{err}"
    );
}

#[test]
fn errors_are_user_errors_not_internal_ones() {
    let a = Array::zeros(&[2], DType::F32).unwrap();
    let err = a.reshape(&[3]).unwrap_err();
    assert!(!err.is_internal() && err.is_shape_mismatch());
    assert!(std::error::Error::source(&err).is_none());
    let with_context = err.clone().context("at .layers[0]");
    assert_eq!(with_context.message(), err.message());
    assert!(with_context.is_shape_mismatch());
    assert!(
        with_context
            .to_string()
            .starts_with("at .layers[0]: reshape")
    );
}

#[test]
fn an_embedding_index_out_of_range_is_an_error_under_vmap_too() {
    use solstice::nn::Embedding;
    use solstice::random::Key;
    let embedding = Embedding::new(4, 2, Key::new(0)).unwrap();
    let tokens = Array::from_vec(vec![1u32, 4, 0], &[3]).unwrap();
    let err = vmap(|t: &Array| embedding.forward(t))(&tokens).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = embedding
        .forward(&Array::scalar(4u32).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("index 4, out of range"), "{err}");
}
