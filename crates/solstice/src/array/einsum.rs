//! `einsum` for two operands, as one batched matrix product.
//!
//! Each label of `"ab,bc->ac"` is sorted into one of four groups: batch
//! (both operands and the output), contracted (both operands, not the
//! output), kept from one operand (that operand and the output), and
//! summed away (one operand only). The operands are summed, transposed and
//! reshaped to `[batch, m, k]` and `[batch, k, n]`, multiplied once, and the
//! result is put in the output's order. Every step is a public operation,
//! so `vmap` and `grad` see through it.

use super::Array;
use crate::error::{Error, Result};

/// Einstein summation over two operands with an explicit output, such as
/// `"ij,jk->ik"` (matrix product), `"bhqd,bhkd->bhqk"` (attention logits)
/// or `"i,i->"` (dot product): `jnp.einsum`. A label repeated within one
/// operand (a diagonal) is not supported.
///
/// # Examples
///
/// ```
/// use solstice::{Array, einsum};
/// # fn main() -> solstice::Result<()> {
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let b = Array::from_vec(vec![1.0f32, 0.0, -1.0], &[3])?;
/// assert_eq!(einsum("ij,j->i", &a, &b)?.to_vec::<f32>()?, vec![-2.0, -2.0]);
/// assert_eq!(einsum("ij,ij->", &a, &a)?.to_scalar::<f32>()?, 91.0);
/// # Ok(()) }
/// ```
pub fn einsum(spec: &str, a: &Array, b: &Array) -> Result<Array> {
    let bad = |why: &str| Error::invalid(format!("einsum got the spec {spec:?}: {why}"));
    let spec_clean: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let (inputs, output) = spec_clean
        .split_once("->")
        .ok_or_else(|| bad("it needs an explicit output, as in \"ij,jk->ik\""))?;
    let (la, lb) = inputs
        .split_once(',')
        .ok_or_else(|| bad("it needs two operands separated by a comma"))?;
    let parse = |s: &str| -> Result<Vec<char>> {
        let labels: Vec<char> = s.chars().collect();
        if labels.iter().any(|c| !c.is_ascii_alphabetic()) {
            return Err(bad("labels are letters"));
        }
        for (i, c) in labels.iter().enumerate() {
            if labels[..i].contains(c) {
                return Err(bad(&format!(
                    "label {c} repeats within one term; diagonals are not supported"
                )));
            }
        }
        Ok(labels)
    };
    let (la, lb, lo) = (parse(la)?, parse(lb)?, parse(output)?);
    for (labels, x, which) in [(&la, a, "first"), (&lb, b, "second")] {
        if labels.len() != x.rank() {
            return Err(Error::shape(format!(
                "einsum's {which} operand has labels {:?} but shape {:?}",
                labels.iter().collect::<String>(),
                x.shape()
            )));
        }
    }
    let size = |c: char| -> Result<usize> {
        let sa = la.iter().position(|&l| l == c).map(|i| a.shape()[i]);
        let sb = lb.iter().position(|&l| l == c).map(|i| b.shape()[i]);
        match (sa, sb) {
            (Some(x), Some(y)) if x != y => Err(Error::shape(format!(
                "einsum {spec:?}: label {c} has size {x} in the first operand and {y} in the \
                 second"
            ))),
            (Some(x), _) | (None, Some(x)) => Ok(x),
            (None, None) => Err(bad(&format!("output label {c} is in no operand"))),
        }
    };
    for &c in &lo {
        size(c)?;
    }
    let in_a = |c: &char| la.contains(c);
    let in_b = |c: &char| lb.contains(c);
    let in_o = |c: &char| lo.contains(c);
    let batch: Vec<char> = lo.iter().copied().filter(|c| in_a(c) && in_b(c)).collect();
    let contracted: Vec<char> = la.iter().copied().filter(|c| in_b(c) && !in_o(c)).collect();
    let kept_a: Vec<char> = lo.iter().copied().filter(|c| in_a(c) && !in_b(c)).collect();
    let kept_b: Vec<char> = lo.iter().copied().filter(|c| in_b(c) && !in_a(c)).collect();

    // Sum away labels in one operand only, then order as [batch, kept, contracted].
    let prepare = |x: &Array, labels: &[char], kept: &[char], last: bool| -> Result<Array> {
        // In this operand only and not in the output.
        let alone = |c: &char| !(in_o(c) || (in_a(c) && in_b(c)));
        let gone: Vec<isize> = (0..labels.len())
            .filter(|&i| alone(&labels[i]))
            .map(|i| i as isize)
            .collect();
        let x = x.sum(&gone)?;
        let left: Vec<char> = labels
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| !gone.contains(&(*i as isize)))
            .map(|(_, c)| c)
            .collect();
        let order: Vec<char> = if last {
            batch
                .iter()
                .chain(&contracted)
                .chain(kept)
                .copied()
                .collect()
        } else {
            batch
                .iter()
                .chain(kept)
                .chain(&contracted)
                .copied()
                .collect()
        };
        let perm: Vec<usize> = order
            .iter()
            .map(|c| {
                left.iter()
                    .position(|l| l == c)
                    .expect("every label placed")
            })
            .collect();
        x.transpose(&perm)
    };
    let product = |labels: &[char]| -> Result<usize> { labels.iter().map(|&c| size(c)).product() };
    let (nb, nm, nk, nn) = (
        product(&batch)?,
        product(&kept_a)?,
        product(&contracted)?,
        product(&kept_b)?,
    );
    let a3 = prepare(a, &la, &kept_a, false)?.reshape(&[nb, nm, nk])?;
    let b3 = prepare(b, &lb, &kept_b, true)?.reshape(&[nb, nk, nn])?;
    let out = a3.matmul(&b3)?;
    let natural: Vec<char> = batch
        .iter()
        .chain(&kept_a)
        .chain(&kept_b)
        .copied()
        .collect();
    let shape = natural
        .iter()
        .map(|&c| size(c))
        .collect::<Result<Vec<_>>>()?;
    let out = out.reshape(&shape)?;
    let perm: Vec<usize> = lo
        .iter()
        .map(|c| {
            natural
                .iter()
                .position(|l| l == c)
                .expect("every label placed")
        })
        .collect();
    out.transpose(&perm)
}
