//! Formulas a user writes in a problem file (a potential V(x), an interaction W(x, y), …),
//! parsed and differentiated symbolically by exmex. This is the one expression machinery of the
//! crate: every model stated as a formula goes through `Expr`.
//!
//! exmex's own grammar differs from the usual one in two places, and both would silently change
//! a model: a unary minus binds tighter than `^` (exmex reads `exp(-x^2)` as exp((−x)²)), and
//! `a^b^c` is (a^b)^c. So before exmex sees a text, a unary minus in front of a power is
//! bracketed (`-x^2` → `-(x^2)`), and chained powers are refused. Numbers may be written in
//! scientific notation (`1e-3`), which exmex's default literals do not accept.

use exmex::prelude::*;
use exmex::{literal_matcher_from_pattern, Differentiate, FloatOpsFactory, MatchLiteral};

literal_matcher_from_pattern!(Literal, r"^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?");

type Flat = FlatEx<f64, FloatOpsFactory<f64>, Literal>;

/// Functions exmex knows; the smooth ones it can differentiate.
const SMOOTH: &[&str] = &[
    "sqrt", "ln", "log", "log10", "log2", "exp", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
];
const NON_SMOOTH: &[&str] = &[
    "abs", "signum", "floor", "round", "ceil", "trunc", "fract", "cbrt", "min", "max", "atan2",
];
const CONSTANTS: &[&str] = &["PI", "E", "e", "TAU", "π", "τ"];

/// A parsed formula in named variables. Variables are given and evaluated in the caller's
/// order (exmex's own order is alphabetical; `slot` maps between the two).
#[derive(Clone)]
pub struct Expr {
    /// The text as the user wrote it.
    text: String,
    flat: Flat,
    /// The caller's variable names.
    vars: Vec<String>,
    /// For each of exmex's variables, its index among the caller's.
    slot: Vec<usize>,
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
        let tokens = tokenize(text)?;
        check_names(&tokens, vars)?;
        let rewritten = bracket_unary_powers(&tokens)?;
        let flat = Flat::parse(&rewritten).map_err(|e| syntax_message(&e.to_string()))?;
        let slot = flat
            .var_names()
            .iter()
            .map(|n| {
                vars.iter()
                    .position(|v| v == n)
                    .expect("names were checked")
            })
            .collect();
        Ok(Expr {
            text: text.trim().to_string(),
            flat,
            vars: vars.iter().map(|v| v.to_string()).collect(),
            slot,
        })
    }

    /// The formula as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The formula as exmex holds it (derivatives have no other text): exmex syntax, in which
    /// a unary minus binds tighter than `^` and variables are in braces.
    pub(crate) fn exmex_text(&self) -> String {
        self.flat.unparse().replace(['{', '}'], "")
    }

    /// Whether the formula contains variable `var` (the caller's index).
    pub(crate) fn depends_on(&self, var: usize) -> bool {
        self.slot.contains(&var)
    }

    /// The value at `values` (the caller's variables, in the caller's order).
    pub fn eval(&self, values: &[f64]) -> f64 {
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

    /// ∂/∂(variable `var`), derived symbolically. A formula without that variable has
    /// derivative 0. Non-smooth functions have no derivative here: the error names them.
    pub fn partial(&self, var: usize) -> Result<Expr, String> {
        let Some(idx) = self.slot.iter().position(|&s| s == var) else {
            return Expr::parse("0", &[]).map(|z| Expr {
                vars: self.vars.clone(),
                ..z
            });
        };
        if let Some(f) = self
            .flat
            .operator_reprs()
            .iter()
            .find(|r| NON_SMOOTH.contains(&r.as_str()))
        {
            return Err(format!(
                "{f} has no symbolic derivative here; the functions that do are {}",
                SMOOTH.join(", ")
            ));
        }
        let flat = self
            .flat
            .clone()
            .partial(idx)
            .map_err(|e| format!("cannot differentiate: {}", e.msg()))?;
        Ok(Expr {
            text: format!("∂({})/∂{}", self.text, self.vars[var]),
            flat,
            vars: self.vars.clone(),
            slot: self.slot.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num,
    Name(String),
    Open,
    Close,
    Comma,
    Op(char),
}

/// (token, its text, 1-based position).
type Token = (Tok, String, usize);

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // An exponent: e or E, an optional sign, digits.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            Tok::Num
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            Tok::Name(chars[start..i].iter().collect())
        } else {
            i += 1;
            match c {
                '(' => Tok::Open,
                ')' => Tok::Close,
                ',' => Tok::Comma,
                '+' | '-' | '*' | '/' | '^' => Tok::Op(c),
                _ => {
                    return Err(format!(
                        "unexpected character {c:?} at position {}; formulas use numbers, \
                         variables, + - * / ^, parentheses and functions such as exp(x)",
                        start + 1
                    ))
                }
            }
        };
        out.push((tok, chars[start..i].iter().collect(), start + 1));
    }
    if out.is_empty() {
        return Err("the formula is empty; write 0 for none".into());
    }
    Ok(out)
}

/// Every name is a variable of the formula, a constant, or a function applied to `( … )`.
fn check_names(tokens: &[Token], vars: &[&str]) -> Result<(), String> {
    let expected = match vars {
        [] => "no variables".to_string(),
        [v] => format!("the variable {v}"),
        _ => format!("the variables {}", vars.join(", ")),
    };
    for (k, (tok, _, pos)) in tokens.iter().enumerate() {
        let Tok::Name(name) = tok else { continue };
        let called = matches!(tokens.get(k + 1), Some((Tok::Open, _, _)));
        let function = SMOOTH.contains(&name.as_str()) || NON_SMOOTH.contains(&name.as_str());
        if called {
            if !function {
                return Err(format!(
                    "unknown function {name} at position {pos}; known: {}, {}",
                    SMOOTH.join(", "),
                    NON_SMOOTH.join(", ")
                ));
            }
        } else if function {
            return Err(format!(
                "{name} at position {pos} is a function: write {name}( … )"
            ));
        } else if !vars.contains(&name.as_str()) && !CONSTANTS.contains(&name.as_str()) {
            return Err(format!(
                "unknown variable {name} at position {pos}; this formula has {expected}"
            ));
        }
    }
    Ok(())
}

/// Is the token at k a unary sign (not a binary operator)?
fn is_unary(tokens: &[Token], k: usize) -> bool {
    matches!(tokens[k].0, Tok::Op('-') | Tok::Op('+'))
        && (k == 0 || matches!(tokens[k - 1].0, Tok::Op(_) | Tok::Open | Tok::Comma))
}

/// The index after the operand starting at k: a number, a variable, a function call, a
/// bracketed group, each with any unary signs in front.
fn operand_end(tokens: &[Token], k: usize) -> Option<usize> {
    match tokens.get(k)?.0 {
        Tok::Op('-') | Tok::Op('+') => operand_end(tokens, k + 1),
        Tok::Num => Some(k + 1),
        Tok::Name(_) if matches!(tokens.get(k + 1), Some((Tok::Open, _, _))) => {
            group_end(tokens, k + 1)
        }
        Tok::Name(_) => Some(k + 1),
        Tok::Open => group_end(tokens, k),
        _ => None,
    }
}

/// The index after the `)` that closes the `(` at k.
fn group_end(tokens: &[Token], k: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, (t, _, _)) in tokens.iter().enumerate().skip(k) {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The text for exmex, with `-a^b` read as −(a^b); `a^b^c` is refused.
fn bracket_unary_powers(tokens: &[Token]) -> Result<String, String> {
    let n = tokens.len();
    let mut open = vec![0usize; n + 1];
    let mut close = vec![0usize; n + 1];
    for k in 0..n {
        if matches!(tokens[k].0, Tok::Op('^')) {
            if let Some(e) = operand_end(tokens, k + 1) {
                if matches!(tokens.get(e), Some((Tok::Op('^'), _, _))) {
                    return Err(format!(
                        "a^b^c at position {} is ambiguous: write (a^b)^c or a^(b^c)",
                        tokens[k].2
                    ));
                }
            }
        }
        if !is_unary(tokens, k) {
            continue;
        }
        if let Some(e) = operand_end(tokens, k + 1) {
            if matches!(tokens.get(e), Some((Tok::Op('^'), _, _))) {
                if let Some(end) = operand_end(tokens, e + 1) {
                    open[k + 1] += 1;
                    close[end] += 1;
                }
            }
        }
    }
    let mut s = String::new();
    for k in 0..=n {
        for _ in 0..close[k] {
            s.push(')');
        }
        for _ in 0..open[k] {
            s.push('(');
        }
        if k < n {
            s.push_str(&tokens[k].1);
            s.push(' ');
        }
    }
    Ok(s)
}

/// exmex's syntax errors, in the words of a formula's author.
fn syntax_message(msg: &str) -> String {
    let what = if msg.contains("parentheses") {
        "unbalanced parentheses"
    } else if msg.contains("operator cannot be") || msg.contains("next to the binary") {
        "two operators in a row"
    } else if msg.contains("one more node than op") || msg.contains("cannot be on the right") {
        "two operands with no operator between them (write 2*x, not 2x)"
    } else {
        return format!("syntax error: {msg}");
    };
    format!("syntax error: {what}")
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
        let abs = Expr::parse("abs(x)", &["x"]).unwrap();
        assert!(abs
            .partial(0)
            .unwrap_err()
            .contains("abs has no symbolic derivative"));
    }
}
