//! Quoting for the remote shell. `ssh host CMD` hands CMD to the remote user's shell, so every
//! argument of a remote command is quoted here and template values stay data: an argument is
//! left bare only when it is made of characters no shell treats specially, otherwise it is put
//! in single quotes, where nothing is special, and a single quote inside it becomes `'\''`.

/// One argument, quoted for a POSIX shell.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return arg.to_owned();
    }
    let mut s = String::with_capacity(arg.len() + 2);
    s.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// A command line for the remote shell: every argument quoted, joined with spaces.
pub fn command<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_when_safe_quoted_otherwise() {
        assert_eq!(quote("run"), "run");
        assert_eq!(
            quote("http://10.0.0.2:80/a.php"),
            "http://10.0.0.2:80/a.php"
        );
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
    }

    /// The shell gives back exactly the arguments, whatever they contain.
    #[test]
    #[cfg(unix)] // runs `sh`, which Windows (and Wine) lack; the remote end of a hop is Linux
    fn round_trips_through_a_real_shell() {
        let nasty = [
            "plain",
            "",
            "two words",
            "it's",
            "'''",
            "$(touch /tmp/triage502-quote-pwned)",
            "`id`",
            "a;b|c&d>e<f",
            "*?[x]~",
            "new\nline",
            "tab\there",
            "\\back\\slash\\",
            "\"double\"",
            "--flag=$HOME",
            "héllo ünïcode",
            "!event",
            "#comment",
        ];
        let cmd = format!("printf '%s\\0' {}", command(&nasty));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|_| true)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        // printf ends every item with NUL, so the split leaves one empty tail.
        assert_eq!(&got[..got.len() - 1], &nasty[..]);
        assert_eq!(got.last().map(String::as_str), Some(""));
        assert!(!std::path::Path::new("/tmp/triage502-quote-pwned").exists());
    }
}
