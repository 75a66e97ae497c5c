//! Formulas evaluated over chunks of points: exmex walks the expression once per `LANES` values,
//! each operator a loop over the lanes, so the tree walk costs a fraction of a nanosecond per
//! value instead of tens (the two-layer forward pass evaluates σ, σ′, σ″ at n·N points a step).

use exmex::{BinOp, MakeOperators, Operator};
use std::str::FromStr;

/// Points evaluated together.
pub const LANES: usize = 1024;

/// One value per lane: `LANES` values on the heap, so that exmex, which passes values by value
/// and keeps them in small on-stack vectors, moves pointers and not kilobytes. (The empty
/// default is what exmex leaves behind when it takes a value; it is never evaluated.)
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lanes(pub Vec<f64>);

impl Lanes {
    pub fn splat(v: f64) -> Lanes {
        Lanes(vec![v; LANES])
    }

    /// The first `values.len()` lanes from `values`, the rest 0.
    pub fn load(values: &[f64]) -> Lanes {
        let mut l = Lanes::splat(0.0);
        l.0[..values.len()].copy_from_slice(values);
        l
    }

    #[inline]
    fn map(mut self, f: impl Fn(f64) -> f64) -> Lanes {
        self.0.iter_mut().for_each(|v| *v = f(*v));
        self
    }

    #[inline]
    fn zip(mut self, o: Lanes, f: impl Fn(f64, f64) -> f64) -> Lanes {
        self.0
            .iter_mut()
            .zip(&o.0)
            .for_each(|(a, &b)| *a = f(*a, b));
        self
    }
}

/// a^b lane by lane; a constant small integer b (every derivative of a polynomial has them)
/// by multiplications in one loop the compiler vectorizes, the same products `pow` takes.
fn lane_pow(a: Lanes, b: Lanes) -> Lanes {
    let e = b.0.first().copied().unwrap_or(f64::NAN);
    if e == e.trunc() && e.abs() <= 64.0 && b.0.iter().all(|&x| x == e) {
        match e as i32 {
            1 => a,
            2 => a.map(|x| x * x),
            3 => a.map(|x| x * x * x),
            k => a.map(|x| x.powi(k)),
        }
    } else {
        a.zip(b, pow)
    }
}

impl FromStr for Lanes {
    type Err = std::num::ParseFloatError;
    fn from_str(s: &str) -> Result<Lanes, Self::Err> {
        f64::from_str(s).map(Lanes::splat)
    }
}

/// x^e, by multiplications when e is a small integer (as in every derivative of a polynomial),
/// which is exact where powf is not.
#[inline]
fn pow(x: f64, e: f64) -> f64 {
    if e == e.trunc() && e.abs() <= 64.0 {
        x.powi(e as i32)
    } else {
        x.powf(e)
    }
}

/// tanh within 2 ulp of libm's at a third of its cost (libm goes through expm1, and the flows
/// spend half their rhs time there): Cephes' rational approximation below 0.625, where
/// 1 − 2/(e^{2|z|} + 1) would cancel, and that formula above (e^{2|z|} = ∞ gives ±1; NaN stays).
#[inline]
pub fn tanh(z: f64) -> f64 {
    let a = z.abs();
    if a < 0.625 {
        let s = z * z;
        let p = (-9.643_991_794_250_523e-1 * s - 9.928_772_310_019_186e1) * s
            - 1.614_687_684_417_084_5e3;
        let q = ((s + 1.128_116_784_916_329_3e2) * s + 2.235_488_390_601_004_6e3) * s
            + 4.844_063_053_251_255e3;
        (a + a * s * p / q).copysign(z)
    } else {
        (1.0 - 2.0 / ((2.0 * a).exp() + 1.0)).copysign(z)
    }
}

/// exmex's float operators, with the same spellings and priorities, for single values
/// (`ScalarOps`) and lane by lane (`LaneOps`); both take tanh from `tanh` above, so that a
/// formula gives the same bits whichever way it is evaluated.
#[derive(Clone, Debug)]
pub(crate) struct ScalarOps;

#[derive(Clone, Debug)]
pub(crate) struct LaneOps;

/// The operator list, given how to lift a unary and a binary f64 function to the type.
macro_rules! float_ops {
    ($T:ty, $unary:ident, $binary:ident, $splat:expr, $pow:expr) => {
        vec![
            Operator::make_bin("^", $pow),
            $binary!("*", 2, true, |a, b| a * b),
            $binary!("/", 3, false, |a, b| a / b),
            Operator::make_bin_unary("+", $binary!(0, true, |a, b| a + b), $unary!(|a| a)),
            Operator::make_bin_unary("-", $binary!(1, false, |a, b| a - b), $unary!(|a| -a)),
            Operator::make_bin("atan2", $binary!(0, false, f64::atan2)),
            Operator::make_bin("min", $binary!(0, true, f64::min)),
            Operator::make_bin("max", $binary!(0, true, f64::max)),
            Operator::make_unary("abs", $unary!(f64::abs)),
            Operator::make_unary("signum", $unary!(f64::signum)),
            Operator::make_unary("sin", $unary!(f64::sin)),
            Operator::make_unary("cos", $unary!(f64::cos)),
            Operator::make_unary("tan", $unary!(f64::tan)),
            Operator::make_unary("asin", $unary!(f64::asin)),
            Operator::make_unary("acos", $unary!(f64::acos)),
            Operator::make_unary("atan", $unary!(f64::atan)),
            Operator::make_unary("sinh", $unary!(f64::sinh)),
            Operator::make_unary("cosh", $unary!(f64::cosh)),
            Operator::make_unary("tanh", $unary!(tanh)),
            Operator::make_unary("asinh", $unary!(f64::asinh)),
            Operator::make_unary("acosh", $unary!(f64::acosh)),
            Operator::make_unary("atanh", $unary!(f64::atanh)),
            Operator::make_unary("floor", $unary!(f64::floor)),
            Operator::make_unary("round", $unary!(f64::round)),
            Operator::make_unary("ceil", $unary!(f64::ceil)),
            Operator::make_unary("trunc", $unary!(f64::trunc)),
            Operator::make_unary("fract", $unary!(f64::fract)),
            Operator::make_unary("exp", $unary!(f64::exp)),
            Operator::make_unary("sqrt", $unary!(f64::sqrt)),
            Operator::make_unary("cbrt", $unary!(f64::cbrt)),
            Operator::make_unary("ln", $unary!(f64::ln)),
            Operator::make_unary("log2", $unary!(f64::log2)),
            Operator::make_unary("log10", $unary!(f64::log10)),
            Operator::make_unary("log", $unary!(f64::ln)),
            Operator::make_constant("PI", $splat(std::f64::consts::PI)),
            Operator::make_constant("π", $splat(std::f64::consts::PI)),
            Operator::make_constant("E", $splat(std::f64::consts::E)),
            Operator::make_constant("e", $splat(std::f64::consts::E)),
            Operator::make_constant("TAU", $splat(std::f64::consts::TAU)),
            Operator::make_constant("τ", $splat(std::f64::consts::TAU)),
        ]
    };
}

macro_rules! scalar_unary {
    ($f:expr) => {
        $f
    };
}

macro_rules! scalar_binary {
    ($name:expr, $prio:expr, $comm:expr, $f:expr) => {
        Operator::make_bin($name, scalar_binary!($prio, $comm, $f))
    };
    ($prio:expr, $comm:expr, $f:expr) => {
        BinOp {
            apply: $f,
            prio: $prio,
            is_commutative: $comm,
        }
    };
}

macro_rules! lane_unary {
    ($f:expr) => {
        |a: Lanes| a.map($f)
    };
}

macro_rules! lane_binary {
    ($name:expr, $prio:expr, $comm:expr, $f:expr) => {
        Operator::make_bin($name, lane_binary!($prio, $comm, $f))
    };
    ($prio:expr, $comm:expr, $f:expr) => {
        BinOp {
            apply: |a: Lanes, b: Lanes| a.zip(b, $f),
            prio: $prio,
            is_commutative: $comm,
        }
    };
}

impl MakeOperators<f64> for ScalarOps {
    fn make<'a>() -> Vec<Operator<'a, f64>> {
        float_ops!(
            f64,
            scalar_unary,
            scalar_binary,
            |v: f64| v,
            scalar_binary!(4, false, pow)
        )
    }
}

impl MakeOperators<Lanes> for LaneOps {
    fn make<'a>() -> Vec<Operator<'a, Lanes>> {
        let pow = BinOp {
            apply: lane_pow,
            prio: 4,
            is_commutative: false,
        };
        float_ops!(Lanes, lane_unary, lane_binary, Lanes::splat, pow)
    }
}
