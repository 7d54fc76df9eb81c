//! A nesting limit for JSON lines, checked before any parser sees the body.
//!
//! Parsers and the code that explains their errors may recurse once per level of `[` or
//! `{`, so a line of a few kilobytes of brackets could exhaust the stack and abort the
//! whole process. One linear scan, aware of strings and escapes, refuses such a line
//! first; topic records are flat or shallowly nested, far below the limit.

use super::BadInput;

/// Deepest nesting of arrays and objects accepted in one JSON line.
pub const MAX_JSON_DEPTH: usize = 64;

/// Refuses the first line of `body` nested deeper than [`MAX_JSON_DEPTH`], naming it.
pub fn check(body: &[u8]) -> Result<(), BadInput> {
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                b'\n' => (in_string, line, depth) = (false, line + 1, 0),
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(BadInput(format!(
                        "line {line}: JSON nested deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => (line, depth) = (line + 1, 0),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn the_limit_is_inclusive_and_names_the_line() {
        assert!(check(nested(MAX_JSON_DEPTH).as_bytes()).is_ok());
        let body = format!("{{}}\n{}\n", nested(MAX_JSON_DEPTH + 1));
        let message = check(body.as_bytes()).unwrap_err().0;
        assert!(
            message.starts_with("line 2: JSON nested deeper"),
            "{message}"
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let body = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(check(body.as_bytes()).is_ok());
    }

    #[test]
    fn unclosed_brackets_do_not_carry_over_lines() {
        let line = "[".repeat(MAX_JSON_DEPTH);
        let body = format!("{line}\n{line}\n{line}\n");
        assert!(check(body.as_bytes()).is_ok());
    }
}
