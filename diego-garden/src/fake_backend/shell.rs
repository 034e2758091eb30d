//! A tiny `sh -c` for fake processes: translates a script of simple commands into
//! [`FakeStep`]s, so the conformance suite's shell scripts run on the fake backend too.
//!
//! Understood: commands separated by `;` or newlines; words quoted with `'...'` or
//! `"..."`; `$NAME`, `${NAME}` from the process environment; `echo [-n] ... [>&2]`,
//! `exit [n]`, `sleep n`, `trap '' TERM`, `cat file...`, `true`, `:`, `false`, `exec cmd`.
//! Anything else fails as the shell does: `sh: <cmd>: not found` and status 127.

use std::time::Duration;

use bytes::Bytes;

use super::script::{FakeScript, FakeStep};

/// Translates a script. `env` is the process's environment.
pub(crate) fn translate(script: &str, env: &[(String, String)]) -> FakeScript {
    let mut out = FakeScript::new();
    for command in split_commands(script) {
        let words = words(&command, env);
        if words.is_empty() {
            continue;
        }
        let ended = command_steps(&words, &mut out.steps);
        if ended {
            break;
        }
    }
    out
}

/// The steps of one program run directly (not through `sh -c`): `true`, `false`, `echo`,
/// `sleep`, `cat`. `None` when the program is unknown.
pub(crate) fn builtin_program(name: &str, args: &[String]) -> Option<FakeScript> {
    if !matches!(name, "true" | "false" | "echo" | "sleep" | "cat") {
        return None;
    }
    let mut words = vec![name.to_string()];
    words.extend(args.iter().cloned());
    let mut script = FakeScript::new();
    command_steps(&words, &mut script.steps);
    Some(script)
}

/// Appends the steps of one command; returns whether the script ends here.
fn command_steps(words: &[String], steps: &mut Vec<FakeStep>) -> bool {
    let mut words: Vec<String> = words.to_vec();
    let mut exec = false;
    if words.first().map(String::as_str) == Some("exec") {
        words.remove(0);
        exec = true;
        if words.is_empty() {
            return false;
        }
    }
    let to_stderr = if let Some(pos) = words.iter().position(|w| w == ">&2" || w == "1>&2") {
        words.remove(pos);
        true
    } else {
        false
    };
    let name = words[0].rsplit('/').next().unwrap_or("").to_string();
    let args = &words[1..];
    match name.as_str() {
        "echo" => {
            let (newline, args) = match args.first().map(String::as_str) {
                Some("-n") => (false, &args[1..]),
                _ => (true, args),
            };
            let mut text = args.join(" ");
            if newline {
                text.push('\n');
            }
            let bytes = Bytes::from(text);
            steps.push(if to_stderr {
                FakeStep::Stderr(bytes)
            } else {
                FakeStep::Stdout(bytes)
            });
            steps.push(FakeStep::Status(0));
        }
        "exit" => {
            let code = args.first().and_then(|a| a.parse::<i32>().ok());
            match code {
                Some(code) => steps.push(FakeStep::Exit(code & 0xff)),
                // `exit` alone keeps the last status: the process ends with it.
                None => return true,
            }
            return true;
        }
        "sleep" => {
            let secs = args
                .first()
                .and_then(|a| a.parse::<f64>().ok())
                .unwrap_or(0.0);
            steps.push(FakeStep::Sleep(Duration::from_secs_f64(secs.max(0.0))));
            steps.push(FakeStep::Status(0));
        }
        "trap" => {
            let ignores_term = args.len() >= 2
                && args[0].is_empty()
                && args[1..]
                    .iter()
                    .any(|s| s == "TERM" || s == "SIGTERM" || s == "15");
            if ignores_term {
                steps.push(FakeStep::IgnoreTerminate);
            }
            steps.push(FakeStep::Status(0));
        }
        "cat" => {
            steps.push(FakeStep::Status(0));
            for file in args {
                steps.push(FakeStep::ReadFile(file.clone()));
            }
        }
        "true" | ":" => steps.push(FakeStep::Status(0)),
        "false" => steps.push(FakeStep::Status(1)),
        other => {
            steps.push(FakeStep::Stderr(Bytes::from(format!(
                "sh: {other}: not found\n"
            ))));
            steps.push(FakeStep::Status(127));
        }
    }
    exec
}

fn split_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in script.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ';' | '\n') => out.push(std::mem::take(&mut current)),
            (None, c) => current.push(c),
        }
    }
    out.push(current);
    out
}

fn words(command: &str, env: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => current.push(c),
            (Some(_), '$') | (None, '$') => {
                let mut name = String::new();
                if chars.peek() == Some(&'{') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                        name.push(c);
                    }
                } else {
                    while let Some(&c) = chars.peek() {
                        if c.is_ascii_alphanumeric() || c == '_' {
                            name.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                if name.is_empty() {
                    current.push('$');
                } else if let Some((_, value)) = env.iter().rev().find(|(n, _)| *n == name) {
                    current.push_str(value);
                }
                in_word = true;
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("A".into(), "one".into()), ("B".into(), "two".into())]
    }

    #[test]
    fn echo_expands_variables_and_redirects() {
        let script = translate("echo \"$A\" ${B}; echo 'x $A' >&2; exit 3", &env());
        assert_eq!(
            script.steps,
            vec![
                FakeStep::Stdout(Bytes::from_static(b"one two\n")),
                FakeStep::Status(0),
                FakeStep::Stderr(Bytes::from_static(b"x $A\n")),
                FakeStep::Status(0),
                FakeStep::Exit(3),
            ]
        );
    }

    #[test]
    fn trap_sleep_and_unknown_commands() {
        let script = translate("trap '' TERM\nsleep 2; frobnicate", &[]);
        assert_eq!(
            script.steps,
            vec![
                FakeStep::IgnoreTerminate,
                FakeStep::Status(0),
                FakeStep::Sleep(Duration::from_secs(2)),
                FakeStep::Status(0),
                FakeStep::Stderr(Bytes::from_static(b"sh: frobnicate: not found\n")),
                FakeStep::Status(127),
            ]
        );
    }

    #[test]
    fn exec_ends_the_script() {
        let script = translate("exec sleep 1; echo never", &[]);
        assert_eq!(script.steps.len(), 2);
        assert!(builtin_program("false", &[]).is_some());
        assert!(builtin_program("vim", &[]).is_none());
    }
}
