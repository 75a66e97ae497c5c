//! The text of a formula before exmex reads it: tokens with their positions (for messages in
//! the author's terms), names checked, the non-smooth functions replaced by switches, and
//! unary minus bracketed before powers.

use super::{ALMOST_SMOOTH, CONSTANTS, NOT_DIFFERENTIABLE, SMOOTH};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num,
    Name(String),
    Open,
    Close,
    Comma,
    Op(char),
}

/// (token, its text, 1-based position).
pub(super) type Token = (Tok, String, usize);

pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, String> {
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
pub(super) fn check_names(tokens: &[Token], vars: &[&str]) -> Result<(), String> {
    let expected = match vars {
        [] => "no variables".to_string(),
        [v] => format!("the variable {v}"),
        _ => format!("the variables {}", vars.join(", ")),
    };
    for (k, (tok, _, pos)) in tokens.iter().enumerate() {
        let Tok::Name(name) = tok else { continue };
        let called = matches!(tokens.get(k + 1), Some((Tok::Open, _, _)));
        let function = [SMOOTH, ALMOST_SMOOTH, NOT_DIFFERENTIABLE]
            .iter()
            .any(|list| list.contains(&name.as_str()));
        if called {
            if !function {
                return Err(format!(
                    "unknown function {name} at position {pos}; known: {}, {}, {}",
                    SMOOTH.join(", "),
                    ALMOST_SMOOTH.join(", "),
                    NOT_DIFFERENTIABLE.join(", ")
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
pub(super) fn bracket_unary_powers(tokens: &[Token]) -> Result<String, String> {
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
pub(super) fn syntax_message(msg: &str) -> String {
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

/// A switch: a variable that stands for a locally constant function of an argument, so that
/// exmex differentiates the rest and the switch counts as constant (derivative 0 almost
/// everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwitchKind {
    /// signum(g): −1, 0, 1.
    Sign,
    /// heaviside(g): 1 where g > 0, else 0.
    Step,
}

impl SwitchKind {
    pub(crate) fn apply(self, g: f64) -> f64 {
        match self {
            SwitchKind::Sign => {
                if g > 0.0 {
                    1.0
                } else if g < 0.0 {
                    -1.0
                } else if g == 0.0 {
                    0.0
                } else {
                    f64::NAN
                }
            }
            SwitchKind::Step => {
                if g > 0.0 {
                    1.0
                } else if g.is_nan() {
                    f64::NAN
                } else {
                    0.0
                }
            }
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SwitchKind::Sign => "signum",
            SwitchKind::Step => "heaviside",
        }
    }
}

/// A switch found in a formula: its kind, and its argument as tokens (already rewritten).
pub(super) struct Found {
    pub kind: SwitchKind,
    pub arg: Vec<Token>,
}

/// The switch variable k's name: exmex reads it as a variable, no formula can name it.
pub(super) fn switch_name(k: usize) -> String {
    format!("_sw{k}")
}

/// Replaces abs, signum, heaviside, relu, max and min by smooth expressions of their arguments
/// and switches, inner calls first (`found` gets them in the order they must be evaluated):
///   abs(g) = g·sign(g),  signum(g) = sign(g),  heaviside(g) = H(g),  relu(g) = g·H(g),
///   max(a, b) = b + (a − b)·H(a − b),  min(a, b) = a − (a − b)·H(a − b).
pub(super) fn replace_switches(
    tokens: &[Token],
    found: &mut Vec<Found>,
) -> Result<Vec<Token>, String> {
    let mut out = vec![];
    let mut k = 0;
    while k < tokens.len() {
        let (tok, _, pos) = &tokens[k];
        let name = match tok {
            Tok::Name(n) if ALMOST_SMOOTH.contains(&n.as_str()) => n.clone(),
            _ => {
                if let Tok::Name(n) = tok {
                    if matches!(tokens.get(k + 1), Some((Tok::Open, _, _))) {
                        let end = group_end(tokens, k + 1)
                            .ok_or("syntax error: unbalanced parentheses")?;
                        let args = arguments(&tokens[k + 2..end - 1]);
                        if args.len() != 1 {
                            return Err(format!(
                                "{n} at position {pos} takes one argument, got {}",
                                args.len()
                            ));
                        }
                    }
                }
                out.push(tokens[k].clone());
                k += 1;
                continue;
            }
        };
        let pos = *pos;
        let end = group_end(tokens, k + 1).ok_or("syntax error: unbalanced parentheses")?;
        let args = arguments(&tokens[k + 2..end - 1]);
        let want = if name == "max" || name == "min" { 2 } else { 1 };
        if args.len() != want || args.iter().any(|a| a.is_empty()) {
            let what = if want == 1 {
                "one argument"
            } else {
                "two arguments, max(a, b)"
            };
            return Err(format!("{name} at position {pos} takes {what}"));
        }
        let args: Vec<Vec<Token>> = args
            .into_iter()
            .map(|a| replace_switches(a, found))
            .collect::<Result<_, _>>()?;
        let t = |tok: Tok, text: &str| (tok, text.to_string(), pos);
        let group = |inner: &[Token]| {
            let mut g = vec![t(Tok::Open, "(")];
            g.extend_from_slice(inner);
            g.push(t(Tok::Close, ")"));
            g
        };
        let mut switch = |kind: SwitchKind, arg: Vec<Token>| {
            found.push(Found { kind, arg });
            let name = switch_name(found.len() - 1);
            (Tok::Name(name.clone()), name, pos)
        };
        let times = |g: &[Token], s: Token| {
            let mut v = vec![t(Tok::Open, "(")];
            v.extend(group(g));
            v.push(t(Tok::Op('*'), "*"));
            v.push(s);
            v.push(t(Tok::Close, ")"));
            v
        };
        let replacement = match name.as_str() {
            "abs" => {
                let s = switch(SwitchKind::Sign, args[0].clone());
                times(&args[0], s)
            }
            "signum" => vec![switch(SwitchKind::Sign, args[0].clone())],
            "heaviside" => vec![switch(SwitchKind::Step, args[0].clone())],
            "relu" => {
                let s = switch(SwitchKind::Step, args[0].clone());
                times(&args[0], s)
            }
            _ => {
                // a − b, and the step H(a − b)
                let mut diff = group(&args[0]);
                diff.push(t(Tok::Op('-'), "-"));
                diff.extend(group(&args[1]));
                let h = switch(SwitchKind::Step, diff.clone());
                let (first, sign) = if name == "max" {
                    (&args[1], "+")
                } else {
                    (&args[0], "-")
                };
                let mut v = vec![t(Tok::Open, "(")];
                v.extend(group(first));
                v.push(t(Tok::Op(sign.chars().next().unwrap_or('+')), sign));
                v.extend(times(&diff, h));
                v.push(t(Tok::Close, ")"));
                v
            }
        };
        out.extend(replacement);
        k = end;
    }
    Ok(out)
}

/// The top-level comma-separated pieces of a call's argument tokens.
fn arguments(tokens: &[Token]) -> Vec<&[Token]> {
    let mut out = vec![];
    let (mut depth, mut start) = (0, 0);
    for (j, (t, _, _)) in tokens.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => depth -= 1,
            Tok::Comma if depth == 0 => {
                out.push(&tokens[start..j]);
                start = j + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out
}

/// A formula (as written, or as exmex prints a derivative) in LaTeX: functions as \tanh, \exp,
/// \sqrt{…}, |…|, powers as ^{…}, products as \cdot; exmex's 2.0 as 2.
pub(super) fn latex(text: &str) -> Result<String, String> {
    let tokens = tokenize(text)?;
    Ok(latex_of(&tokens))
}

fn latex_of(tokens: &[Token]) -> String {
    let mut out = String::new();
    let mut k = 0;
    while k < tokens.len() {
        let (tok, text, _) = &tokens[k];
        match tok {
            Tok::Num => out.push_str(text.strip_suffix(".0").unwrap_or(text)),
            Tok::Name(name) if matches!(tokens.get(k + 1), Some((Tok::Open, _, _))) => {
                let end = group_end(tokens, k + 1).unwrap_or(tokens.len());
                let inner = latex_of(&tokens[(k + 2).min(end)..end.saturating_sub(1).max(k + 2)]);
                let call = match name.as_str() {
                    "sqrt" => format!("\\sqrt{{{inner}}}"),
                    "abs" => format!("\\left|{inner}\\right|"),
                    "exp" | "sin" | "cos" | "tan" | "sinh" | "cosh" | "tanh" | "ln" | "log" => {
                        format!("\\{name}\\left({inner}\\right)")
                    }
                    "heaviside" => format!("H\\left({inner}\\right)"),
                    "signum" => format!("\\operatorname{{sign}}\\left({inner}\\right)"),
                    _ => format!("\\operatorname{{{name}}}\\left({inner}\\right)"),
                };
                out.push_str(&call);
                k = end;
                continue;
            }
            Tok::Name(name) => out.push_str(match name.as_str() {
                "PI" | "π" => "\\pi",
                "TAU" | "τ" => "\\tau",
                n => n,
            }),
            Tok::Op('^') => {
                let end = operand_end(tokens, k + 1).unwrap_or(tokens.len());
                let mut operand = &tokens[k + 1..end];
                // (x) as an exponent needs no brackets.
                if operand.len() >= 2
                    && matches!(operand[0].0, Tok::Open)
                    && group_end(operand, 0) == Some(operand.len())
                {
                    operand = &operand[1..operand.len() - 1];
                }
                out.push_str(&format!("^{{{}}}", latex_of(operand)));
                k = end;
                continue;
            }
            Tok::Op('*') => out.push_str(" \\cdot "),
            Tok::Op(c) if is_unary(tokens, k) => out.push(*c),
            Tok::Op(c) => {
                out.push(' ');
                out.push(*c);
                out.push(' ');
            }
            Tok::Open => out.push('('),
            Tok::Close => out.push(')'),
            Tok::Comma => out.push_str(", "),
        }
        k += 1;
    }
    out
}
