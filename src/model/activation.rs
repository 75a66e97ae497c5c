//! Activations σ with their first two derivatives, evaluated elementwise in one fused pass.

use crate::expr::{Expr, Lanes, LANES};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use statrs::function::erf::erf;
use std::sync::Arc;

/// An activation σ: one of the named ones (each with its hand-written derivatives and, where it
/// has them, closed-form kernels and a fast path), or any formula of z, whose derivatives exmex
/// derives. The problem file's `activation` is a name from `NAMED` or a formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    Relu,
    Tanh,
    Erf,
    Sigmoid,
    Softplus,
    Quadratic,
    Linear,
    /// Mei–Montanari–Nguyen's clipped linear σ: −2.5 below 0.5, 7.5 above 1.5, linear between.
    Ramp,
    /// σ(z) written as a formula.
    Formula(Arc<Formula>),
}

/// The named activations: the problem file's spelling, the activation, and its formula in z
/// (what `derive` prints, and what tests hold the hand-written derivatives against; erf has
/// none, exmex has no erf).
pub const NAMED: [(&str, Activation, Option<&str>); 8] = [
    ("relu", Activation::Relu, Some("max(z, 0)")),
    ("tanh", Activation::Tanh, Some("tanh(z)")),
    ("erf", Activation::Erf, None),
    ("sigmoid", Activation::Sigmoid, Some("1/(1 + exp(-z))")),
    ("softplus", Activation::Softplus, Some("log(1 + exp(z))")),
    ("quadratic", Activation::Quadratic, Some("z^2")),
    ("linear", Activation::Linear, Some("z")),
    (
        "ramp",
        Activation::Ramp,
        Some("-2.5 + 10*(min(max(z, 0.5), 1.5) - 0.5)"),
    ),
];

/// σ, σ′ and σ″ of a formula activation, derived once.
pub struct Formula {
    pub sigma: Expr,
    pub d1: Expr,
    pub d2: Expr,
}

impl std::fmt::Debug for Formula {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Formula({:?})", self.sigma.text())
    }
}

impl PartialEq for Formula {
    fn eq(&self, other: &Formula) -> bool {
        self.sigma.text() == other.sigma.text()
    }
}

impl Formula {
    /// σ from its formula in z, with σ′ and σ″ derived.
    pub fn parse(text: &str) -> Result<Formula, String> {
        let sigma = Expr::parse(text, &["z"])?;
        if !sigma.depends_on(0) {
            return Err(format!("\"{text}\" does not depend on z"));
        }
        let d1 = sigma.partial(0)?;
        let d2 = d1.partial(0)?;
        Ok(Formula { sigma, d1, d2 })
    }

    /// z ← σ(z + shift(i)) for each i, with σ′ and σ″ where asked, `LANES` values at a time.
    fn apply(
        &self,
        z: &mut [f64],
        shift: impl Fn(usize) -> f64,
        mut d1: Option<&mut [f64]>,
        mut d2: Option<&mut [f64]>,
    ) {
        for start in (0..z.len()).step_by(LANES) {
            let end = (start + LANES).min(z.len());
            let mut l = Lanes::splat(0.0);
            for (k, zi) in z[start..end].iter().enumerate() {
                l.0[k] = zi + shift(start + k);
            }
            let at = std::slice::from_ref(&l);
            if let Some(d) = d1.as_deref_mut() {
                d[start..end].copy_from_slice(&self.d1.eval_lanes(at).0[..end - start]);
            }
            if let Some(d) = d2.as_deref_mut() {
                d[start..end].copy_from_slice(&self.d2.eval_lanes(at).0[..end - start]);
            }
            z[start..end].copy_from_slice(&self.sigma.eval_lanes_owned(vec![l]).0[..end - start]);
        }
    }
}

impl Serialize for Activation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Activation, D::Error> {
        let text = String::deserialize(d)?;
        Activation::parse(&text).map_err(serde::de::Error::custom)
    }
}

const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// A clipped linear activation: s₁ below t₁, s₂ above t₂, linear between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampShape {
    pub t1: f64,
    pub t2: f64,
    pub s1: f64,
    pub s2: f64,
}

/// Mei–Montanari–Nguyen's isotropic-Gaussians activation, with the constants as the notes recall
/// them (shared/papers/saddle_to_saddle.md §3.4; not confirmed against the paper).
pub const RAMP: RampShape = RampShape {
    t1: 0.5,
    t2: 1.5,
    s1: -2.5,
    s2: 7.5,
};

impl RampShape {
    /// (s₂ − s₁)/(t₂ − t₁)
    pub fn k(&self) -> f64 {
        (self.s2 - self.s1) / (self.t2 - self.t1)
    }
    pub fn value(&self, z: f64) -> f64 {
        self.s1 + self.k() * (z.clamp(self.t1, self.t2) - self.t1)
    }
    /// σ'(z), 0 at the kinks.
    pub fn slope(&self, z: f64) -> f64 {
        if z > self.t1 && z < self.t2 {
            self.k()
        } else {
            0.0
        }
    }
}

use crate::expr::tanh;

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Activation {
    /// σ(z)
    #[inline]
    pub fn value(&self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => tanh(z),
            Activation::Erf => erf(z),
            Activation::Sigmoid => sigmoid(z),
            // log(1 + e^z) without overflow for large z
            Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
            Activation::Quadratic => z * z,
            Activation::Linear => z,
            Activation::Ramp => RAMP.value(z),
            Activation::Formula(f) => f.sigma.eval(&[z]),
        }
    }

    /// (σ(z), σ'(z))
    #[inline]
    pub fn value_d1(&self, z: f64) -> (f64, f64) {
        match self {
            // σ'(0) = 0: the subgradient the kink convention of most frameworks uses.
            Activation::Relu => (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }),
            Activation::Tanh => {
                let t = tanh(z);
                (t, 1.0 - t * t)
            }
            Activation::Erf => (erf(z), TWO_OVER_SQRT_PI * (-z * z).exp()),
            Activation::Sigmoid => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
            Activation::Softplus => (self.value(z), sigmoid(z)),
            Activation::Quadratic => (z * z, 2.0 * z),
            Activation::Linear => (z, 1.0),
            Activation::Ramp => (RAMP.value(z), RAMP.slope(z)),
            Activation::Formula(f) => (f.sigma.eval(&[z]), f.d1.eval(&[z])),
        }
    }

    /// (σ'(z), σ''(z)); σ'' is 0 away from the kink for relu.
    #[inline]
    pub(crate) fn d1_d2(&self, z: f64) -> (f64, f64) {
        match self {
            Activation::Relu => (if z > 0.0 { 1.0 } else { 0.0 }, 0.0),
            Activation::Tanh => {
                let t = tanh(z);
                let d = 1.0 - t * t;
                (d, -2.0 * t * d)
            }
            Activation::Erf => {
                let d = TWO_OVER_SQRT_PI * (-z * z).exp();
                (d, -2.0 * z * d)
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                let d = s * (1.0 - s);
                (d, d * (1.0 - 2.0 * s))
            }
            Activation::Softplus => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
            Activation::Quadratic => (2.0 * z, 2.0),
            Activation::Linear => (1.0, 0.0),
            Activation::Ramp => (RAMP.slope(z), 0.0),
            Activation::Formula(f) => (f.d1.eval(&[z]), f.d2.eval(&[z])),
        }
    }

    /// The problem file's spelling: the name ("relu", "tanh", …) or the formula as written.
    pub fn name(&self) -> String {
        match self {
            Activation::Formula(f) => f.sigma.text().to_string(),
            named => NAMED
                .iter()
                .find(|(_, a, _)| a == named)
                .map_or("?", |(n, _, _)| n)
                .to_string(),
        }
    }

    /// A name from `NAMED`, or a formula in z.
    pub fn parse(text: &str) -> Result<Activation, String> {
        if let Some((_, a, _)) = NAMED.iter().find(|(n, _, _)| *n == text.trim()) {
            return Ok(a.clone());
        }
        let names: Vec<&str> = NAMED.iter().map(|(n, _, _)| *n).collect();
        let word = text.trim();
        let bare_name = word.starts_with(|c: char| c.is_alphabetic())
            && word.chars().all(|c| c.is_alphanumeric() || c == '_');
        if word != "z" && bare_name {
            return Err(format!(
                "unknown activation \"{word}\"; expected one of {}, or a formula of z such as \"tanh(z) + 0.1*z^3\"",
                names.join(", ")
            ));
        }
        Formula::parse(text)
            .map(|f| Activation::Formula(Arc::new(f)))
            .map_err(|e| {
                format!(
                    "{e} (an activation is one of {} or a formula of z, e.g. \"tanh(z) + 0.1*z^3\")",
                    names.join(", ")
                )
            })
    }

    /// The activation as a formula with its derivatives: its own, or its `NAMED` entry's (none
    /// for erf).
    pub fn formula(&self) -> Option<Arc<Formula>> {
        match self {
            Activation::Formula(f) => Some(f.clone()),
            named => NAMED
                .iter()
                .find(|(_, a, _)| a == named)
                .and_then(|(_, _, text)| *text)
                .and_then(|text| Formula::parse(text).ok().map(Arc::new)),
        }
    }

    /// σ, σ′ and σ″ as text (exmex's syntax for derivatives), in LaTeX, and whether the
    /// derivatives hold almost everywhere (a non-smooth formula). Named activations give their
    /// formula's; erf, which exmex lacks, its known derivatives.
    pub fn derived(&self) -> (Vec<String>, Vec<String>, bool) {
        match self.formula() {
            Some(f) => crate::expr::written_forms(&f.sigma, &[&f.d1, &f.d2]),
            None => (
                vec![
                    "erf(z)".into(),
                    "2/sqrt(PI)*exp(-(z^2))".into(),
                    "-4/sqrt(PI)*z*exp(-(z^2))".into(),
                ],
                vec![
                    "\\operatorname{erf}(z)".into(),
                    "\\frac{2}{\\sqrt{\\pi}} e^{-z^{2}}".into(),
                    "-\\frac{4}{\\sqrt{\\pi}} z e^{-z^{2}}".into(),
                ],
                false,
            ),
        }
    }

    /// The named activations.
    pub fn all() -> Vec<Activation> {
        NAMED.iter().map(|(_, a, _)| a.clone()).collect()
    }

    /// z ← σ(z + shift(i)) for each i of `z`, with σ′ (and σ″) at the same points where asked.
    /// Formulas are evaluated a chunk at a time; the named activations one value at a time,
    /// each a loop of its own.
    #[inline]
    pub(crate) fn apply(
        &self,
        z: &mut [f64],
        shift: impl Fn(usize) -> f64,
        d1: Option<&mut [f64]>,
        d2: Option<&mut [f64]>,
    ) {
        if let Activation::Formula(f) = self {
            return f.apply(z, shift, d1, d2);
        }
        match (d1, d2) {
            (None, _) => z
                .iter_mut()
                .enumerate()
                .for_each(|(i, zi)| *zi = self.value(*zi + shift(i))),
            (Some(d1), None) => {
                for (i, (zi, di)) in z.iter_mut().zip(d1.iter_mut()).enumerate() {
                    let (v, dv) = self.value_d1(*zi + shift(i));
                    *zi = v;
                    *di = dv;
                }
            }
            (Some(d1), Some(d2)) => {
                for (i, ((zi, d1i), d2i)) in z
                    .iter_mut()
                    .zip(d1.iter_mut())
                    .zip(d2.iter_mut())
                    .enumerate()
                {
                    let z = *zi + shift(i);
                    let (v, dv) = self.value_d1(z);
                    let (_, ddv) = self.d1_d2(z);
                    *zi = v;
                    *d1i = dv;
                    *d2i = ddv;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for act in Activation::all() {
            for &z in &[-2.3, -0.7, 0.31, 1.9, 4.2] {
                let fd1 = (act.value(z + h) - act.value(z - h)) / (2.0 * h);
                let (v, d1) = act.value_d1(z);
                let (d1b, d2) = act.d1_d2(z);
                let fd2 = (act.value_d1(z + h).1 - act.value_d1(z - h).1) / (2.0 * h);
                assert_eq!(v, act.value(z));
                assert_eq!(d1, d1b);
                assert!((fd1 - d1).abs() < 1e-7, "{act:?} σ' at {z}: {fd1} vs {d1}");
                assert!((fd2 - d2).abs() < 1e-6, "{act:?} σ'' at {z}: {fd2} vs {d2}");
            }
        }
    }

    /// Each named activation's hand-written σ′ and σ″ are its formula's derived ones (away from
    /// kinks).
    #[test]
    fn named_activations_agree_with_their_formulas() {
        for (name, act, formula) in NAMED {
            let Some(text) = formula else { continue };
            let f = Formula::parse(text).unwrap();
            for &z in &[-2.3, -0.7, 0.31, 0.77, 1.9, 4.2] {
                let (v, d1) = act.value_d1(z);
                let (_, d2) = act.d1_d2(z);
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-13 * b.abs().max(1.0);
                assert!(close(f.sigma.eval(&[z]), v), "{name} at {z}");
                assert!(close(f.d1.eval(&[z]), d1), "{name}' at {z}");
                assert!(
                    close(f.d2.eval(&[z]), d2),
                    "{name}'' at {z}: {} vs {d2}",
                    f.d2.eval(&[z])
                );
            }
            assert_eq!(Activation::parse(name).unwrap(), act);
            assert_eq!(act.name(), name);
        }
    }

    /// A formula goes through `apply` a chunk at a time and gives what one value at a time gives.
    #[test]
    fn formula_chunks_agree_with_single_values() {
        let act = Activation::parse("tanh(z) + 0.1*z^3").unwrap();
        let z0: Vec<f64> = (0..77).map(|i| -3.0 + 0.08 * i as f64).collect();
        let (mut z, mut d1, mut d2) = (z0.clone(), vec![0.0; 77], vec![0.0; 77]);
        act.apply(&mut z, |i| 0.01 * i as f64, Some(&mut d1), Some(&mut d2));
        for i in 0..77 {
            let x = z0[i] + 0.01 * i as f64;
            assert_eq!(z[i], act.value(x));
            assert_eq!((d1[i], d2[i]), act.d1_d2(x));
        }
    }

    #[test]
    fn tanh_matches_libm_to_two_ulp() {
        // Dense around the branch point 0.625 and over every binade from 1e-300 to overflow.
        let mut zs: Vec<f64> = (0..200_000).map(|k| (k as f64 - 1e5) * 2.5e-4).collect();
        zs.extend((-300..=3).flat_map(|e| (1..10).map(move |m| m as f64 * 1.37 * 10f64.powi(e))));
        zs.extend((0..2000).map(|k| 0.62 + k as f64 * 5e-6));
        let mut worst = 0.0f64;
        for &z in &zs {
            for z in [z, -z] {
                let (ours, libm) = (tanh(z), z.tanh());
                let err = if libm == 0.0 {
                    ours.abs()
                } else {
                    ((ours - libm) / libm).abs()
                };
                worst = worst.max(err);
            }
        }
        assert!(worst <= 2.0 * f64::EPSILON, "max relative error {worst:e}");
        assert_eq!(tanh(800.0), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert!(tanh(-0.0).is_sign_negative());
    }

    #[test]
    fn softplus_is_stable_for_large_inputs() {
        assert_eq!(Activation::Softplus.value(800.0), 800.0);
        assert!(Activation::Softplus.value(-800.0) >= 0.0);
    }
}
