//! Formulas a user writes in a problem file (a potential V(x), an interaction W(x, y), …),
//! parsed and differentiated symbolically by exmex. This is the one expression machinery of the
//! crate: every model stated as a formula goes through `Expr`.
//!
//! exmex's own grammar differs from the usual one in two places, and both would silently change
//! a model: a unary minus binds tighter than `^` (exmex reads `exp(-x^2)` as exp((−x)²)), and
//! `a^b^c` is (a^b)^c. So before exmex sees a text, a unary minus in front of a power is
//! bracketed (`-x^2` → `-(x^2)`), and chained powers are refused. Numbers may be written in
//! scientific notation (`1e-3`), which exmex's default literals do not accept.

mod lanes;
mod syntax;

pub use lanes::{tanh, Lanes, LANES};
pub(crate) use syntax::SwitchKind;

use exmex::prelude::*;
use exmex::{literal_matcher_from_pattern, Differentiate, MatchLiteral};
use std::sync::Arc;

literal_matcher_from_pattern!(Literal, r"^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?");

type Flat = FlatEx<f64, lanes::ScalarOps, Literal>;
type LaneFlat = FlatEx<Lanes, lanes::LaneOps, Literal>;

/// Functions exmex differentiates.
const SMOOTH: &[&str] = &[
    "sqrt", "ln", "log", "log10", "log2", "exp", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
];
/// Functions with almost-everywhere derivatives: rewritten with switches (`syntax`).
const ALMOST_SMOOTH: &[&str] = &["abs", "signum", "heaviside", "relu", "max", "min"];
/// Functions that parse but have no derivative here.
const NOT_DIFFERENTIABLE: &[&str] = &["floor", "round", "ceil", "trunc", "fract", "cbrt"];
const CONSTANTS: &[&str] = &["PI", "E", "e", "TAU", "π", "τ"];

/// A formula as exmex holds it, for single values and for lanes, with where its variables sit
/// among the caller's variables followed by the switches.
#[derive(Clone)]
struct Compiled {
    flat: Flat,
    slot: Vec<usize>,
    lanes: LaneFlat,
    lane_slot: Vec<usize>,
}

impl Compiled {
    /// `names`: the caller's variables, then the switches.
    fn new(flat: Flat, names: &[String]) -> Result<Compiled, String> {
        let slots = |vars: &[String]| -> Vec<usize> {
            vars.iter()
                .map(|n| {
                    names
                        .iter()
                        .position(|v| v == n)
                        .expect("names were checked")
                })
                .collect()
        };
        let lanes = LaneFlat::parse(flat.unparse())
            .map_err(|e| format!("cannot compile {}: {}", flat.unparse(), e.msg()))?;
        Ok(Compiled {
            slot: slots(flat.var_names()),
            lane_slot: slots(lanes.var_names()),
            flat,
            lanes,
        })
    }

    fn parse(text: &str, names: &[String]) -> Result<Compiled, String> {
        let flat = Flat::parse(text).map_err(|e| syntax::syntax_message(&e.to_string()))?;
        Compiled::new(flat, names)
    }

    fn eval(&self, values: &[f64]) -> f64 {
        let mut args = [0.0; 8];
        let k = self.slot.len();
        if k > args.len() {
            let v: Vec<f64> = self.slot.iter().map(|&s| values[s]).collect();
            return self.flat.eval(&v).unwrap_or(f64::NAN);
        }
        for (a, &s) in args.iter_mut().zip(&self.slot) {
            *a = values[s];
        }
        self.flat.eval(&args[..k]).unwrap_or(f64::NAN)
    }

    fn eval_lanes(&self, values: &[Lanes]) -> Lanes {
        let nan = || Lanes::splat(f64::NAN);
        match self.lane_slot[..] {
            [] => self.lanes.eval(&[]),
            [a] => self.lanes.eval(std::slice::from_ref(&values[a])),
            _ => {
                let args: Vec<Lanes> = self.lane_slot.iter().map(|&s| values[s].clone()).collect();
                self.lanes.eval(&args)
            }
        }
        .unwrap_or_else(|_| nan())
    }

    /// exmex's text without the braces around variables and the spaces tokens were joined by.
    fn text(&self) -> String {
        self.flat.unparse().replace(['{', '}', ' '], "")
    }
}

/// A formula and its derivatives as `derive` and the archive show them: the first as written,
/// the others in exmex's text; the same in LaTeX; and whether the derivatives hold almost
/// everywhere (the formula has switches).
pub fn written_forms(first: &Expr, derivatives: &[&Expr]) -> (Vec<String>, Vec<String>, bool) {
    let mut plain = vec![first.text().to_string()];
    plain.extend(derivatives.iter().map(|d| d.exmex_text()));
    let mut latex = vec![first.latex()];
    latex.extend(derivatives.iter().map(|d| d.latex()));
    (plain, latex, first.has_switches())
}

/// A switch variable: kind, argument, and the argument as the author wrote it.
struct Switch {
    kind: SwitchKind,
    arg: Compiled,
}

/// A parsed formula in named variables. Variables are given and evaluated in the caller's
/// order (exmex's own order is alphabetical; the slots map between the two). Non-smooth
/// functions become switches (`syntax::replace_switches`), shared by the formula and its
/// derivatives and evaluated first.
#[derive(Clone)]
pub struct Expr {
    /// The text as the user wrote it.
    text: String,
    body: Compiled,
    /// The caller's variable names.
    vars: Vec<String>,
    switches: Arc<Vec<Switch>>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.text)
    }
}

impl Expr {
    /// Parses `text`, a formula in (some of) the variables `vars`. The message of an error
    /// names the position (1-based character) and what was expected there.
    pub fn parse(text: &str, vars: &[&str]) -> Result<Expr, String> {
        let tokens = syntax::tokenize(text)?;
        syntax::check_names(&tokens, vars)?;
        let mut found = vec![];
        let tokens = syntax::replace_switches(&tokens, &mut found)?;
        let mut names: Vec<String> = vars.iter().map(|v| v.to_string()).collect();
        let mut switches = vec![];
        for (k, f) in found.into_iter().enumerate() {
            let arg = Compiled::parse(&syntax::bracket_unary_powers(&f.arg)?, &names)?;
            switches.push(Switch { kind: f.kind, arg });
            names.push(syntax::switch_name(k));
        }
        let body = Compiled::parse(&syntax::bracket_unary_powers(&tokens)?, &names)?;
        Ok(Expr {
            text: text.trim().to_string(),
            body,
            vars: vars.iter().map(|v| v.to_string()).collect(),
            switches: Arc::new(switches),
        })
    }

    /// The formula as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The formula as exmex holds it (derivatives have no other text): exmex syntax, in which
    /// a unary minus binds tighter than `^`, with each switch written out as signum( … ) or
    /// heaviside( … ).
    pub fn exmex_text(&self) -> String {
        self.written(&self.body, self.switches.len())
    }

    /// `body`'s text with switches 0..upto written out (a switch's argument uses only earlier
    /// ones).
    fn written(&self, body: &Compiled, upto: usize) -> String {
        let mut t = body.text();
        // Later switches first: their names contain earlier ones' (_sw1 in _sw10).
        for (k, s) in self.switches[..upto].iter().enumerate().rev() {
            let name = syntax::switch_name(k);
            if t.contains(&name) {
                let arg = self.written(&s.arg, k);
                t = t.replace(&name, &format!("{}({})", s.kind.name(), arg.trim()));
            }
        }
        t
    }

    /// The formula in LaTeX: as written for a parsed one, exmex's text for a derivative.
    pub fn latex(&self) -> String {
        let text = if self.text.starts_with('∂') {
            self.exmex_text()
        } else {
            self.text.clone()
        };
        syntax::latex(&text).unwrap_or(text)
    }

    /// Whether the formula contains variable `var` (the caller's index), directly or in a
    /// switch it uses.
    pub(crate) fn depends_on(&self, var: usize) -> bool {
        self.body.slot.contains(&var)
            || self
                .body
                .slot
                .iter()
                .any(|&s| s >= self.vars.len() && self.switch_depends_on(s - self.vars.len(), var))
    }

    fn switch_depends_on(&self, k: usize, var: usize) -> bool {
        let slot = &self.switches[k].arg.slot;
        slot.contains(&var)
            || slot
                .iter()
                .any(|&s| s >= self.vars.len() && self.switch_depends_on(s - self.vars.len(), var))
    }

    /// Whether a derivative of the formula holds only almost everywhere (it has switches).
    pub fn has_switches(&self) -> bool {
        !self.switches.is_empty()
    }

    /// The kinks of a formula of one variable in [lo, hi]: where an argument of its switches
    /// (abs, max, heaviside, …) changes sign, found on a grid of 4096 cells and refined by
    /// bisection to the last bit. Quadrature splits its intervals there.
    pub fn kinks(&self, lo: f64, hi: f64) -> Vec<f64> {
        let cells = 4096;
        let at = |k: usize| lo + (hi - lo) * k as f64 / cells as f64;
        let mut out = vec![];
        for k in 0..self.switches.len() {
            // The switch's argument alone, on its own earlier switches.
            let g = |z: f64| self.switches[k].arg.eval(&self.with_switches(&[z], k));
            let mut prev = g(lo);
            for c in 1..=cells {
                let z = at(c);
                let now = g(z);
                if now == 0.0 {
                    out.push(z);
                } else if prev.signum() * now.signum() < 0.0 && prev != 0.0 {
                    let (mut a, mut b, ga) = (at(c - 1), z, prev);
                    for _ in 0..200 {
                        let mid = 0.5 * (a + b);
                        if mid <= a || mid >= b {
                            break;
                        }
                        if g(mid).signum() == ga.signum() {
                            a = mid;
                        } else {
                            b = mid;
                        }
                    }
                    out.push(0.5 * (a + b));
                }
                prev = now;
            }
        }
        out.sort_by(f64::total_cmp);
        out.dedup();
        out
    }

    /// The value at `values` (the caller's variables, in the caller's order).
    pub fn eval(&self, values: &[f64]) -> f64 {
        if self.switches.is_empty() {
            return self.body.eval(values);
        }
        self.body
            .eval(&self.with_switches(values, self.switches.len()))
    }

    /// The caller's values followed by the values of switches 0..upto there (each switch's
    /// argument uses only the earlier ones).
    fn with_switches(&self, values: &[f64], upto: usize) -> Vec<f64> {
        let mut all = values[..self.vars.len()].to_vec();
        for s in &self.switches[..upto] {
            let g = s.arg.eval(&all);
            all.push(s.kind.apply(g));
        }
        all
    }

    /// The values at `LANES` points at once: `values[v]` holds variable v at each point.
    pub fn eval_lanes(&self, values: &[Lanes]) -> Lanes {
        if self.switches.is_empty() {
            return self.body.eval_lanes(values);
        }
        let mut all = values[..self.vars.len()].to_vec();
        for s in self.switches.iter() {
            let mut g = s.arg.eval_lanes(&all);
            g.0.iter_mut().for_each(|v| *v = s.kind.apply(*v));
            all.push(g);
        }
        self.body.eval_lanes(&all)
    }

    /// As `eval_lanes`, taking the values: a formula of one variable then reads it in place
    /// instead of copying it.
    pub fn eval_lanes_owned(&self, values: Vec<Lanes>) -> Lanes {
        if self.switches.is_empty() && self.body.lane_slot == [0] && values.len() == 1 {
            return self
                .body
                .lanes
                .eval_vec(values)
                .unwrap_or_else(|_| Lanes::splat(f64::NAN));
        }
        self.eval_lanes(&values)
    }

    /// ∂/∂(variable `var`), derived symbolically; switches count as constants, so the
    /// derivative of a non-smooth formula holds almost everywhere. A formula without that
    /// variable has derivative 0. Functions without a derivative rule are named in the error.
    pub fn partial(&self, var: usize) -> Result<Expr, String> {
        let names = self.names();
        let reprs = self.body.flat.operator_reprs();
        if let Some(f) = reprs
            .iter()
            .find(|r| NOT_DIFFERENTIABLE.contains(&r.as_str()))
        {
            return Err(format!(
                "{f} has no symbolic derivative here; the functions that do are {}, and almost \
                 everywhere {}",
                SMOOTH.join(", "),
                ALMOST_SMOOTH.join(", ")
            ));
        }
        let name = &self.vars[var];
        let body = match self.body.flat.var_names().iter().position(|n| n == name) {
            None => Compiled::parse("0", &names)?,
            Some(idx) => {
                let flat = self
                    .body
                    .flat
                    .clone()
                    .partial(idx)
                    .map_err(|e| format!("cannot differentiate: {}", e.msg()))?;
                Compiled::new(flat, &names)?
            }
        };
        Ok(Expr {
            text: format!("∂({})/∂{}", self.text, self.vars[var]),
            body,
            vars: self.vars.clone(),
            switches: self.switches.clone(),
        })
    }

    /// The caller's variables, then the switches.
    fn names(&self) -> Vec<String> {
        let mut names = self.vars.clone();
        names.extend((0..self.switches.len()).map(syntax::switch_name));
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, vars: &[&str], values: &[f64]) -> f64 {
        Expr::parse(text, vars).unwrap().eval(values)
    }

    #[test]
    fn usual_precedence_and_literals() {
        assert_eq!(at("-x^2", &["x"], &[3.0]), -9.0);
        assert_eq!(at("exp(-x^2)", &["x"], &[1.0]), (-1.0f64).exp());
        assert_eq!(at("2*-x^2", &["x"], &[3.0]), -18.0);
        assert_eq!(at("x^-2", &["x"], &[2.0]), 0.25);
        assert_eq!(at("1e-3*x + 2.5E+1", &["x"], &[2.0]), 25.002);
        assert_eq!(at("-(x - y)^2/2", &["x", "y"], &[3.0, 1.0]), -2.0);
        assert_eq!(at("-2*x", &["x"], &[3.0]), -6.0);
        // y before x in exmex's (alphabetical) order: the caller's order still holds.
        assert_eq!(at("y - x", &["y", "x"], &[1.0, 5.0]), -4.0);
        assert_eq!(
            at(
                "x1*y1 + x2",
                &["x1", "x2", "y1", "y2"],
                &[2.0, 7.0, 3.0, 0.0]
            ),
            13.0
        );
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let e = Expr::parse("-exp(-(x - y)^2/2) + x^4/4 - x^2/2 + sin(x*y)", &["x", "y"]).unwrap();
        let (x, y) = (0.7, -0.3);
        let h = 1e-5;
        let fd = (e.eval(&[x + h, y]) - e.eval(&[x - h, y])) / (2.0 * h);
        let dx = e.partial(0).unwrap();
        assert!(
            (dx.eval(&[x, y]) - fd).abs() < 1e-9,
            "{} vs {fd}",
            dx.eval(&[x, y])
        );
        let dxy = dx.partial(1).unwrap();
        let fd2 = (dx.eval(&[x, y + h]) - dx.eval(&[x, y - h])) / (2.0 * h);
        assert!((dxy.eval(&[x, y]) - fd2).abs() < 1e-8);
        assert!(!Expr::parse("x^2", &["x", "y"])
            .unwrap()
            .partial(1)
            .unwrap()
            .depends_on(0));
        assert_eq!(
            Expr::parse("x^2", &["x", "y"])
                .unwrap()
                .partial(1)
                .unwrap()
                .eval(&[1.0, 2.0]),
            0.0
        );
    }

    #[test]
    fn bad_formulas_name_the_position() {
        let err = |t: &str| Expr::parse(t, &["x"]).unwrap_err();
        assert!(
            err("foo(x)").contains("unknown function foo at position 1"),
            "{}",
            err("foo(x)")
        );
        assert!(err("x + z").contains("unknown variable z at position 5"));
        assert!(err("x +* 2").contains("two operators"), "{}", err("x +* 2"));
        assert!(err("2x").contains("2*x"), "{}", err("2x"));
        assert!(err("(x").contains("parentheses"));
        assert!(err("x^2^3").contains("ambiguous"));
        assert!(err("x $ 2").contains("position 3"));
        assert!(err("").contains("empty"));
        let floor = Expr::parse("floor(x)", &["x"]).unwrap();
        assert!(floor
            .partial(0)
            .unwrap_err()
            .contains("floor has no symbolic derivative"));
        assert!(err("max(x)").contains("max at position 1 takes two arguments"));
        assert!(err("tanh(x, 2)").contains("tanh at position 1 takes one argument"));
    }

    /// abs, max, min, relu, heaviside: values exact, derivatives against finite differences
    /// away from the kinks, and 0-slopes of the switches themselves.
    #[test]
    fn non_smooth_functions_have_almost_everywhere_derivatives() {
        type Case = (&'static str, fn(f64) -> f64);
        let cases: [Case; 6] = [
            ("z/(1 + abs(z))", |z| z / (1.0 + z.abs())),
            ("max(z, 0)^2 - min(z, -1)", |z| {
                z.max(0.0).powi(2) - z.min(-1.0)
            }),
            ("relu(z - 0.5)*tanh(z)", |z| (z - 0.5).max(0.0) * z.tanh()),
            (
                "heaviside(z)*z^3",
                |z| if z > 0.0 { z.powi(3) } else { 0.0 },
            ),
            ("abs(abs(z) - 1)", |z| (z.abs() - 1.0).abs()),
            ("-abs(z)^2", |z| -(z * z)),
        ];
        for (text, f) in cases {
            let e = Expr::parse(text, &["z"]).unwrap();
            assert!(e.has_switches(), "{text}");
            let d1 = e.partial(0).unwrap();
            let d2 = d1.partial(0).unwrap();
            for z in [-2.3, -0.7, 0.31, 0.9, 1.9] {
                assert!((e.eval(&[z]) - f(z)).abs() < 1e-14, "{text} at {z}");
                let h = 1e-6;
                let fd = (f(z + h) - f(z - h)) / (2.0 * h);
                assert!(
                    (d1.eval(&[z]) - fd).abs() < 1e-7,
                    "{text}' at {z}: {} vs {fd}",
                    d1.eval(&[z])
                );
                let fd2 = (d1.eval(&[z + h]) - d1.eval(&[z - h])) / (2.0 * h);
                assert!((d2.eval(&[z]) - fd2).abs() < 1e-6, "{text}'' at {z}");
            }
        }
        let text = Expr::parse("z/(1 + abs(z))", &["z"])
            .unwrap()
            .partial(0)
            .unwrap()
            .exmex_text();
        assert!(text.contains("signum(z)"), "{text}");
    }

    #[test]
    fn latex_reads_like_the_formula() {
        let l = |t: &str| Expr::parse(t, &["z"]).unwrap().latex();
        assert_eq!(
            l("tanh(z) + 0.1*z^3"),
            "\\tanh\\left(z\\right) + 0.1 \\cdot z^{3}"
        );
        assert_eq!(
            l("sqrt(abs(z))^(2*z)"),
            "\\sqrt{\\left|z\\right|}^{2 \\cdot z}"
        );
        assert_eq!(l("-z/(1 + exp(-z))"), "-z / (1 + \\exp\\left(-z\\right))");
    }

    /// Lanes give the values one at a time gives, for every lane.
    #[test]
    fn lanes_agree_with_single_values() {
        let e = Expr::parse("exp(-x^2/2)*y + max(x, y) - 1e-3*x^3", &["x", "y"]).unwrap();
        let xs: Vec<f64> = (0..LANES).map(|i| -2.0 + 0.13 * i as f64).collect();
        let ys: Vec<f64> = (0..LANES).map(|i| 1.0 - 0.07 * i as f64).collect();
        let out = e.eval_lanes(&[Lanes::load(&xs), Lanes::load(&ys)]);
        for i in 0..LANES {
            let one = e.eval(&[xs[i], ys[i]]);
            assert!((out.0[i] - one).abs() <= 1e-15 * one.abs().max(1.0), "{i}");
        }
    }
}
