//! Activations σ with their first two derivatives, evaluated elementwise in one fused pass.

use crate::expr::{Expr, Lanes, LANES};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use statrs::function::erf::erf;
use std::f64::consts::PI;
use std::sync::Arc;

/// An activation σ: a named one (an entry of `NAMED`, which holds all the crate knows of it), or
/// any formula of z, whose derivatives exmex derives. The problem file's `activation` is a name
/// from `NAMED` or a formula.
#[derive(Clone)]
pub enum Activation {
    Named(&'static Named),
    /// σ(z) written as a formula.
    Formula(Arc<Formula>),
}

/// A named activation: its one home. Adding an activation is adding an entry to `NAMED`.
pub struct Named {
    /// The problem file's spelling.
    pub name: &'static str,
    /// σ as a formula in z: what `derive` prints, and what the tests hold the hand-written
    /// derivatives to. None for erf (exmex has no erf): then `written` gives its derivatives.
    pub formula: Option<&'static str>,
    /// σ(z), (σ(z), σ′(z)) and (σ′(z), σ″(z)), hand-written for speed.
    pub value: fn(f64) -> f64,
    pub value_d1: fn(f64) -> (f64, f64),
    pub d1_d2: fn(f64) -> (f64, f64),
    /// (E[σ(u)σ(v)], E[σ′(u)σ′(v)]) for a centred Gaussian (u, v) with Var u = s11, Var v = s22,
    /// Cov = s12, in closed form: the infinite-width kernels (`limits::kernels`); without it,
    /// quadrature of the formula.
    pub moments: Option<Moments>,
    /// The population risk's pair kernel in closed form (`limits::population`).
    pub pair: Option<Pair>,
    /// A hand-written kernel family of its own, if it has one.
    pub fast: Option<Fast>,
    /// σ, σ′, σ″ as (text, LaTeX) when there is no `formula` to derive them from.
    pub written: Option<[(&'static str, &'static str); 3]>,
}

/// (s11, s22, s12) ↦ (E[σ(u)σ(v)], E[σ′(u)σ′(v)]).
pub type Moments = fn(f64, f64, f64) -> (f64, f64);

/// Kernels written by hand for one activation: what `Named::fast` points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// Relu's: the fused AVX2 passes (`model::relu_fused`) and the inlined sweep of
    /// `model::two_layer`, both relu's arithmetic (max(z, 0) and its 0/1 slope).
    Relu,
}

/// Which closed form of the population pair kernel E[σ(⟨w, x⟩)σ(⟨w′, x⟩)] an activation has.
#[derive(Debug, Clone, Copy)]
pub enum Pair {
    /// Cho–Saul's arc-cosine kernel.
    Relu,
    /// Williams' arcsine kernel.
    Erf,
    /// σ(z) = Σ_j b[j] z^j, by Wick's theorem.
    Polynomial(&'static [f64]),
}

const PLAIN: Named = Named {
    name: "",
    formula: None,
    value: |z| z,
    value_d1: |z| (z, 1.0),
    d1_d2: |_| (1.0, 0.0),
    moments: None,
    pair: None,
    fast: None,
    written: None,
};

/// The named activations.
pub static NAMED: [Named; 8] = [
    Named {
        name: "relu",
        formula: Some("max(z, 0)"),
        value: |z| z.max(0.0),
        // σ'(0) = 0: the subgradient the kink convention of most frameworks uses.
        value_d1: |z| (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }),
        d1_d2: |z| (if z > 0.0 { 1.0 } else { 0.0 }, 0.0),
        moments: Some(relu_moments),
        pair: Some(Pair::Relu),
        fast: Some(Fast::Relu),
        ..PLAIN
    },
    Named {
        name: "tanh",
        formula: Some("tanh(z)"),
        value: tanh,
        value_d1: |z| {
            let t = tanh(z);
            (t, 1.0 - t * t)
        },
        d1_d2: |z| {
            let t = tanh(z);
            let d = 1.0 - t * t;
            (d, -2.0 * t * d)
        },
        ..PLAIN
    },
    Named {
        name: "erf",
        formula: None,
        value: erf,
        value_d1: |z| (erf(z), TWO_OVER_SQRT_PI * (-z * z).exp()),
        d1_d2: |z| {
            let d = TWO_OVER_SQRT_PI * (-z * z).exp();
            (d, -2.0 * z * d)
        },
        moments: Some(erf_moments),
        pair: Some(Pair::Erf),
        written: Some([
            ("erf(z)", "\\operatorname{erf}(z)"),
            (
                "2/sqrt(PI)*exp(-(z^2))",
                "\\frac{2}{\\sqrt{\\pi}} e^{-z^{2}}",
            ),
            (
                "-4/sqrt(PI)*z*exp(-(z^2))",
                "-\\frac{4}{\\sqrt{\\pi}} z e^{-z^{2}}",
            ),
        ]),
        ..PLAIN
    },
    Named {
        name: "sigmoid",
        formula: Some("1/(1 + exp(-z))"),
        value: sigmoid,
        value_d1: |z| {
            let s = sigmoid(z);
            (s, s * (1.0 - s))
        },
        d1_d2: |z| {
            let s = sigmoid(z);
            let d = s * (1.0 - s);
            (d, d * (1.0 - 2.0 * s))
        },
        ..PLAIN
    },
    Named {
        name: "softplus",
        formula: Some("log(1 + exp(z))"),
        value: softplus,
        value_d1: |z| (softplus(z), sigmoid(z)),
        d1_d2: |z| {
            let s = sigmoid(z);
            (s, s * (1.0 - s))
        },
        ..PLAIN
    },
    Named {
        name: "quadratic",
        formula: Some("z^2"),
        value: |z| z * z,
        value_d1: |z| (z * z, 2.0 * z),
        d1_d2: |z| (2.0 * z, 2.0),
        moments: Some(quadratic_moments),
        pair: Some(Pair::Polynomial(&[0.0, 0.0, 1.0])),
        ..PLAIN
    },
    Named {
        name: "linear",
        formula: Some("z"),
        moments: Some(|_, _, s12| (s12, 1.0)),
        pair: Some(Pair::Polynomial(&[0.0, 1.0])),
        ..PLAIN
    },
    // Mei–Montanari–Nguyen's clipped linear σ: −2.5 below 0.5, 7.5 above 1.5, linear between.
    Named {
        name: "ramp",
        formula: Some("-2.5 + 10*(min(max(z, 0.5), 1.5) - 0.5)"),
        value: |z| RAMP.value(z),
        value_d1: |z| (RAMP.value(z), RAMP.slope(z)),
        d1_d2: |z| (RAMP.slope(z), 0.0),
        ..PLAIN
    },
];

/// Relu's moments (Cho & Saul's arc-cosine kernels of degree 1 and 0).
fn relu_moments(s11: f64, s22: f64, s12: f64) -> (f64, f64) {
    let norm = (s11 * s22).sqrt();
    if norm == 0.0 {
        // One of u, v is identically 0: relu(0) = relu'(0) = 0.
        return (0.0, 0.0);
    }
    let cos = (s12 / norm).clamp(-1.0, 1.0);
    let theta = cos.acos();
    (
        norm / (2.0 * PI) * (theta.sin() + (PI - theta) * cos),
        (PI - theta) / (2.0 * PI),
    )
}

/// Erf's moments (Williams' arcsine kernel).
fn erf_moments(s11: f64, s22: f64, s12: f64) -> (f64, f64) {
    let (p, q) = (1.0 + 2.0 * s11, 1.0 + 2.0 * s22);
    (
        2.0 / PI * (2.0 * s12 / (p * q).sqrt()).clamp(-1.0, 1.0).asin(),
        4.0 / PI / (p * q - 4.0 * s12 * s12).sqrt(),
    )
}

/// z²'s moments by Wick's theorem: E[u²v²] = s11 s22 + 2 s12², E[2u · 2v] = 4 s12.
fn quadratic_moments(s11: f64, s22: f64, s12: f64) -> (f64, f64) {
    (s11 * s22 + 2.0 * s12 * s12, 4.0 * s12)
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Activation({})", self.name())
    }
}

impl PartialEq for Activation {
    fn eq(&self, other: &Activation) -> bool {
        match (self, other) {
            (Activation::Named(a), Activation::Named(b)) => a.name == b.name,
            (Activation::Formula(a), Activation::Formula(b)) => a == b,
            _ => false,
        }
    }
}

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

/// log(1 + e^z) without overflow for large z.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Activation {
    /// The named activation `name` (an entry of `NAMED`).
    pub fn named(name: &str) -> Option<Activation> {
        NAMED.iter().find(|n| n.name == name).map(Activation::Named)
    }

    /// Whether this is the named activation `name`.
    pub fn is(&self, name: &str) -> bool {
        matches!(self, Activation::Named(n) if n.name == name)
    }

    /// Its `NAMED` entry; None for a formula.
    pub fn entry(&self) -> Option<&'static Named> {
        match self {
            Activation::Named(n) => Some(n),
            Activation::Formula(_) => None,
        }
    }

    /// σ(z)
    #[inline]
    pub fn value(&self, z: f64) -> f64 {
        match self {
            Activation::Named(n) => (n.value)(z),
            Activation::Formula(f) => f.sigma.eval(&[z]),
        }
    }

    /// (σ(z), σ'(z))
    #[inline]
    pub fn value_d1(&self, z: f64) -> (f64, f64) {
        match self {
            Activation::Named(n) => (n.value_d1)(z),
            Activation::Formula(f) => (f.sigma.eval(&[z]), f.d1.eval(&[z])),
        }
    }

    /// (σ'(z), σ''(z)); σ'' is 0 away from the kink for relu.
    #[inline]
    pub(crate) fn d1_d2(&self, z: f64) -> (f64, f64) {
        match self {
            Activation::Named(n) => (n.d1_d2)(z),
            Activation::Formula(f) => (f.d1.eval(&[z]), f.d2.eval(&[z])),
        }
    }

    /// The problem file's spelling: the name ("relu", "tanh", …) or the formula as written.
    pub fn name(&self) -> String {
        match self {
            Activation::Named(n) => n.name.to_string(),
            Activation::Formula(f) => f.sigma.text().to_string(),
        }
    }

    /// A name from `NAMED`, or a formula in z.
    pub fn parse(text: &str) -> Result<Activation, String> {
        if let Some(a) = Activation::named(text.trim()) {
            return Ok(a);
        }
        let names: Vec<&str> = NAMED.iter().map(|n| n.name).collect();
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
            Activation::Named(n) => n
                .formula
                .and_then(|text| Formula::parse(text).ok().map(Arc::new)),
        }
    }

    /// σ, σ′ and σ″ as text (exmex's syntax for derivatives), in LaTeX, and whether the
    /// derivatives hold almost everywhere (a non-smooth formula). Named activations give their
    /// formula's, or their written ones (erf, which exmex lacks).
    pub fn derived(&self) -> (Vec<String>, Vec<String>, bool) {
        if let Some(f) = self.formula() {
            return crate::expr::written_forms(&f.sigma, &[&f.d1, &f.d2]);
        }
        let written = self.entry().and_then(|n| n.written).unwrap_or_default();
        (
            written.iter().map(|w| w.0.to_string()).collect(),
            written.iter().map(|w| w.1.to_string()).collect(),
            false,
        )
    }

    /// The named activations.
    pub fn all() -> Vec<Activation> {
        NAMED.iter().map(Activation::Named).collect()
    }

    /// The closed-form (E[σ(u)σ(v)], E[σ′(u)σ′(v)]) of `Named::moments`, if it has one.
    pub fn gaussian_moments(&self, s11: f64, s22: f64, s12: f64) -> Option<(f64, f64)> {
        self.entry()?.moments.map(|m| m(s11, s22, s12))
    }

    /// Whether relu's own kernels apply (`Fast::Relu`).
    pub(crate) fn fused(&self) -> bool {
        self.entry()
            .is_some_and(|n| matches!(n.fast, Some(Fast::Relu)))
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
        for entry in &NAMED {
            let (name, act) = (entry.name, Activation::Named(entry));
            let Some(text) = entry.formula else { continue };
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
        let softplus = Activation::named("softplus").unwrap();
        assert_eq!(softplus.value(800.0), 800.0);
        assert!(softplus.value(-800.0) >= 0.0);
    }
}
