//! Daemon commands: a string split into words at compile time the way a
//! POSIX shell splits them (without running a shell), or an explicit list.

use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{LitStr, Token};

/// A program and its arguments.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Command {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
}

const EXAMPLE: &str = "e.g. `\"worker --port 8080\"` or `[\"worker\", \"--port\", \"8080\"]`";

/// What runs the command: the fix for a shell's habit differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runs {
    /// A daemon, which has an `env` option.
    Daemon,
    /// An exec probe, which has none.
    Probe,
}

/// Reads `"program arg 'quoted arg'"`.
pub(crate) fn from_string(lit: &LitStr, runs: Runs) -> syn::Result<Command> {
    from_text(&lit.value(), runs).map_err(|message| syn::Error::new(lit.span(), message))
}

/// Reads the inside of `["program", "arg", ...]`.
pub(crate) fn from_list(tokens: proc_macro2::TokenStream, whole: proc_macro2::Span) -> syn::Result<Command> {
    let words = Punctuated::<LitStr, Token![,]>::parse_terminated.parse2(tokens.clone()).map_err(|error| {
        missing_comma(tokens).unwrap_or_else(|| {
            syn::Error::new(error.span(), "expected a string literal: a command list is `[\"program\", \"arg\", ...]`")
        })
    })?;
    let mut words = words.into_iter();
    let Some(program) = words.next() else {
        return Err(syn::Error::new(whole, format!("empty command: name the program to run, {EXAMPLE}")));
    };
    if program.value().trim().is_empty() {
        return Err(syn::Error::new(program.span(), format!("empty program name: name the program to run, {EXAMPLE}")));
    }
    let args: Vec<LitStr> = words.collect();
    if let Some(word) = std::iter::once(&program).chain(&args).find(|word| word.value().contains('\0')) {
        return Err(syn::Error::new(word.span(), NUL_BYTE));
    }
    Ok(Command { program: program.value(), args: args.iter().map(LitStr::value).collect() })
}

/// The error for two words of a command list without the `,` between
/// them (`["python3" "-m"]`), on the second, which the list's parser
/// would call no string literal.
fn missing_comma(tokens: proc_macro2::TokenStream) -> Option<syn::Error> {
    let strings: Vec<Option<LitStr>> =
        tokens.into_iter().map(|token| syn::parse2::<LitStr>(token.into()).ok()).collect();
    strings.windows(2).find_map(|pair| match pair {
        [Some(first), Some(second)] => Some(syn::Error::new(
            second.span(),
            format!(
                "expected `,` between {:?} and {:?}: a command list is `[\"program\", \"arg\", ...]`",
                first.value(),
                second.value()
            ),
        )),
        _ => None,
    })
}

/// The error for a command word with a NUL byte in it.
const NUL_BYTE: &str = "the command contains a NUL byte (`\\0`), which no program name or argument can hold";

/// Splits a command string; the error message is ready for the user.
pub(crate) fn from_text(text: &str, runs: Runs) -> Result<Command, String> {
    let words = shell_words::split(text).map_err(|_| {
        format!("unbalanced quotes in the command {text:?}: close every `'` and `\"`, or escape it with a backslash")
    })?;
    match shell_operator(text) {
        Some(LINE_BREAK) => {
            return Err(format!(
                "a line break ends a command in a shell, and what follows would be a second command, but commands \
                 are not run through a shell: write the command on one line (a backslash before the line break \
                 continues it), or use a shell: `[\"sh\", \"-c\", {text:?}]`"
            ));
        }
        Some(operator) => {
            return Err(format!(
                "`{operator}` is a shell operator, but commands are not run through a shell; \
                 to use a shell, write it out: `[\"sh\", \"-c\", {text:?}]`"
            ));
        }
        None => {}
    }
    if let Some(expansion) = shell_expansion(text) {
        return Err(format!(
            "`{expansion}` is expanded by a shell, but commands are not run through a shell: the program would get \
             `{expansion}` as written; write the value itself, or use a shell: `[\"sh\", \"-c\", {text:?}]`"
        ));
    }
    if text.contains('\0') {
        return Err(NUL_BYTE.to_owned());
    }
    let mut words = words.into_iter();
    let Some(program) = words.next() else {
        return Err(format!("empty command: name the program to run, {EXAMPLE}"));
    };
    // Blank as the list form's check is: no program is named by spaces.
    if program.trim().is_empty() {
        return Err(format!("empty program name: name the program to run, {EXAMPLE}"));
    }
    if let Some((key, value)) = program.split_once('=').filter(|(key, _)| is_variable_name(key)) {
        let fix = match runs {
            Runs::Daemon => format!(
                "name the program first, and give the variable as an option: `{{ env = {{ {key} = {value:?} }} }}`"
            ),
            // A probe has no `env` of its own, nor does the daemon's reach it.
            Runs::Probe => format!("run it with `env`, which sets it without a shell: `{:?}`", format!("env {text}")),
        };
        return Err(format!("`{program}` sets an environment variable, as only a shell does before a command: {fix}"));
    }
    Ok(Command { program, args: words.collect() })
}

/// Whether `name` is a shell variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first expansion that a shell would make in `text` and a program
/// given it as written would not: a variable (`$HOME`, `${HOME}`, `$1`) outside
/// single quotes, or a `~` that begins a word outside quotes.
fn shell_expansion(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let (mut single, mut double, mut word_start) = (false, false, true);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at_word_start = std::mem::replace(&mut word_start, !single && !double && c.is_whitespace());
        match c {
            '\'' if !double => single = !single,
            _ if single => {}
            '\\' => i += 1,
            '"' => double = !double,
            '$' => {
                if let Some(variable) = variable(&chars[i..]) {
                    return Some(variable);
                }
            }
            '~' if at_word_start && !double => return Some("~".to_owned()),
            // A comment, to its newline.
            '#' if at_word_start && !double => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                word_start = true;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The first expansion that a shell would make in a path written as is and
/// nothing makes in a daemon's working directory: a `~` that begins it, or
/// a variable (`$HOME`, `${HOME}`). Quotes are a path's own characters.
pub(crate) fn path_expansion(path: &str) -> Option<String> {
    if path.starts_with('~') {
        return Some("~".to_owned());
    }
    let chars: Vec<char> = path.chars().collect();
    (0..chars.len())
        .filter(|&i| {
            chars[i] == '$' && chars.get(i + 1).is_some_and(|&c| c == '{' || c.is_ascii_alphabetic() || c == '_')
        })
        .find_map(|i| variable(&chars[i..]))
}

/// The variable that `text`, which begins with a `$`, begins with:
/// `$HOME`, `${HOME}`, `$1`, `$$`, ...
fn variable(text: &[char]) -> Option<String> {
    match text.get(1) {
        Some('{') => Some(text.iter().take_while(|&&c| c != '}').chain(Some(&'}')).collect()),
        Some(&c) if c.is_ascii_alphabetic() || c == '_' => Some(
            std::iter::once('$')
                .chain(text[1..].iter().copied().take_while(|c| c.is_ascii_alphanumeric() || *c == '_'))
                .collect(),
        ),
        Some(&c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => Some(format!("${c}")),
        _ => None,
    }
}

/// The first shell operator that a shell would act on in `text`: outside
/// quotes for `|`, `&`, `;`, `<`, `>`, and a line break between two
/// commands (as [`LINE_BREAK`]), and also inside double quotes for command
/// substitution (backticks and `$(`).
pub(crate) fn shell_operator(text: &str) -> Option<&'static str> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let chars: Vec<char> = text.chars().collect();
    let mut quote = Quote::None;
    // Where a word may begin: a `#` there starts a comment, as in a shell
    // (and in shell-words), which ends at the next newline.
    let mut word_start = true;
    // Whether a command began before a line break: blank lines and comments
    // around a command are none.
    let mut in_command = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let at_word_start = std::mem::replace(&mut word_start, quote == Quote::None && matches!(c, ' ' | '\t' | '\n'));
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                }
            }
            Quote::Double => match c {
                '\\' => i += 1,
                '"' => quote = Quote::None,
                '`' => return Some("`"),
                '$' if next == Some('(') => return Some("$("),
                _ => {}
            },
            Quote::None => match c {
                '\n' if in_command && starts_a_command(&chars[i + 1..]) => return Some(LINE_BREAK),
                '\n' | ' ' | '\t' => {}
                '\\' => {
                    // An escaped line break continues the line.
                    in_command |= next != Some('\n');
                    i += 1;
                }
                '\'' => (quote, in_command) = (Quote::Single, true),
                '"' => (quote, in_command) = (Quote::Double, true),
                '#' if at_word_start => {
                    // Up to the line break, which is looked at next.
                    while chars.get(i + 1).is_some_and(|&c| c != '\n') {
                        i += 1;
                    }
                }
                '|' if next == Some('|') => return Some("||"),
                '|' => return Some("|"),
                '&' if next == Some('&') => return Some("&&"),
                '&' => return Some("&"),
                ';' => return Some(";"),
                '>' if next == Some('>') => return Some(">>"),
                '>' => return Some(">"),
                '<' => return Some("<"),
                '`' => return Some("`"),
                '$' if next == Some('(') => return Some("$("),
                _ => in_command = true,
            },
        }
        i += 1;
    }
    None
}

/// What [`shell_operator`] returns for a line break between two commands.
pub(crate) const LINE_BREAK: &str = "\n";

/// Whether `rest` holds a command of its own: a word outside comments.
fn starts_a_command(rest: &[char]) -> bool {
    let rest: String = rest.iter().collect();
    shell_words::split(&rest).is_ok_and(|words| !words.is_empty())
}

/// The error for a command written as several strings (`"python3", "-m",
/// "http.server"`, as the words of a list without its brackets), on the
/// second, with the list they make; the strings after `first` are read,
/// so that what follows them is read as it would be after the command.
fn strings_without_brackets(first: &LitStr, input: ParseStream<'_>, runs: Runs) -> Option<syn::Error> {
    let mut more: Vec<LitStr> = Vec::new();
    while input.peek(LitStr) || (input.peek(Token![,]) && input.peek2(LitStr)) {
        let _ = input.parse::<Option<Token![,]>>();
        more.extend(input.parse::<LitStr>().ok());
    }
    let second = more.first()?;
    // The first may hold several words itself (`"pg_isready -h db", "-q"`).
    let mut words = shell_words::split(&first.value()).unwrap_or_else(|_| vec![first.value()]);
    words.extend(more.iter().map(LitStr::value));
    let list = format!("[{}]", words.iter().map(|word| format!("{word:?}")).collect::<Vec<_>>().join(", "));
    let list = match runs {
        Runs::Daemon => list,
        Runs::Probe => format!("exec({list})"),
    };
    Some(syn::Error::new(
        second.span(),
        format!("a command is one string, or a list of its words in brackets, not several strings: write `{list}`"),
    ))
}

/// Parses either form from a `daemon NAME = ...` source.
pub(crate) fn parse(input: ParseStream<'_>, runs: Runs) -> syn::Result<Command> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        if let Some(error) = strings_without_brackets(&lit, input, runs) {
            return Err(error);
        }
        return from_string(&lit, runs);
    }
    if input.peek(syn::token::Bracket) {
        let content;
        let bracket = syn::bracketed!(content in input);
        let tokens: proc_macro2::TokenStream = content.parse()?;
        return from_list(tokens, bracket.span.join());
    }
    Err(input.error(format!("expected the command to run, {EXAMPLE}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn daemon_command(tokens: proc_macro2::TokenStream) -> syn::Result<Command> {
        (|input: ParseStream<'_>| parse(input, Runs::Daemon)).parse2(tokens)
    }

    fn words(text: &str) -> Vec<String> {
        let command = from_text(text, Runs::Daemon).unwrap();
        let mut all = vec![command.program];
        all.extend(command.args);
        all
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(words("worker --port 8080"), ["worker", "--port", "8080"]);
        assert_eq!(words("echo 'a b' \"c d\" e\\ f"), ["echo", "a b", "c d", "e f"]);
        assert_eq!(words("  spaced   out  "), ["spaced", "out"]);
        assert_eq!(words("grep -E 'a|b' file"), ["grep", "-E", "a|b", "file"]);
        assert_eq!(words("echo \"x > y\""), ["echo", "x > y"]);
        assert_eq!(words("echo a\\|b"), ["echo", "a|b"]);
        assert_eq!(words("worker # a comment | here"), ["worker"]);
        assert_eq!(words("echo '$(date)'"), ["echo", "$(date)"]);
    }

    #[test]
    fn finds_shell_operators() {
        for (text, operator) in [
            ("a | b", "|"),
            ("a|b", "|"),
            ("a || b", "||"),
            ("a && b", "&&"),
            ("a &", "&"),
            ("a; b", ";"),
            ("a > out", ">"),
            ("a >> out", ">>"),
            ("a < in", "<"),
            ("echo `date`", "`"),
            ("echo $(date)", "$("),
            ("echo \"$(date)\"", "$("),
            ("echo \"`date`\"", "`"),
            ("a 2>&1", ">"),
        ] {
            assert_eq!(shell_operator(text), Some(operator), "{text}");
        }
        for text in ["a 'b|c'", "a \"b && c\"", "a b\\;c", "a $HOME", "a '$(x)'", "a #b|"] {
            assert_eq!(shell_operator(text), None, "{text}");
        }
        assert_eq!(shell_operator("a#b|"), Some("|"));
        // A comment ends at its newline; an escaped space begins no word.
        assert_eq!(shell_operator("echo #stamp\n| tee /tmp/log"), Some(LINE_BREAK));
        assert_eq!(shell_operator("echo #stamp | tee /tmp/log"), None);
        assert_eq!(shell_operator("a\\ #b|"), Some("|"));
        // A line break between two commands ends the first, as `;` does;
        // blank lines, comments and an escaped line break do not.
        assert_eq!(shell_operator("a #b\n c"), Some(LINE_BREAK));
        assert_eq!(shell_operator("printf '<%s>' one\ntwo"), Some(LINE_BREAK));
        for text in ["\n  worker --port 8080\n", "a\n# done\n", "a \\\n b", "a 'b\nc'", "a \"b\nc\"", "# note\na"] {
            assert_eq!(shell_operator(text), None, "{text:?}");
        }
    }

    #[test]
    fn finds_shell_expansions() {
        for (text, expansion) in [
            ("a $HOME", "$HOME"),
            ("a \"$HOME/x\"", "$HOME"),
            ("a ${HOME}/x", "${HOME}"),
            ("a $1", "$1"),
            ("a $$", "$$"),
            ("a ~", "~"),
            ("a ~/x", "~"),
            ("a ~user/x", "~"),
        ] {
            assert_eq!(shell_expansion(text).as_deref(), Some(expansion), "{text}");
        }
        for text in ["a '$HOME'", "a \\$HOME", "a b$", "a 'x~'", "a x~y", "a \"~\"", "a '~'", "a # $HOME ~"] {
            assert_eq!(shell_expansion(text), None, "{text}");
        }
        assert!(from_text("a $HOME", Runs::Daemon).unwrap_err().contains("`$HOME` is expanded by a shell"));
    }

    #[test]
    fn finds_expansions_in_a_path() {
        for (path, expansion) in [
            ("~", "~"),
            ("~/app", "~"),
            ("~user/app", "~"),
            ("$HOME/app", "$HOME"),
            ("/srv/${APP}/data", "${APP}"),
            ("/srv/$_x1", "$_x1"),
        ] {
            assert_eq!(path_expansion(path).as_deref(), Some(expansion), "{path}");
        }
        for path in ["/var/lib/worker", "/a/~b", "relative/dir", "/price$", "/a/$1", "/a/$$", "'~'"] {
            assert_eq!(path_expansion(path), None, "{path}");
        }
    }

    #[test]
    fn refuses_a_variable_set_before_the_program() {
        let error = from_text("FOO=1 prog --x", Runs::Daemon).unwrap_err();
        assert!(error.contains("`FOO=1` sets an environment variable"), "{error}");
        assert!(error.contains("env = { FOO = \"1\" }"), "{error}");
        // A probe has no `env` option: it is told to use the `env` program.
        let error = from_text("FOO=1 prog --x", Runs::Probe).unwrap_err();
        assert!(error.contains("`\"env FOO=1 prog --x\"`") && !error.contains("env = {"), "{error}");
        // An `=` in a program's name that is not an assignment is left alone.
        assert_eq!(from_text("./a=b c", Runs::Daemon).map(|command| command.program), Ok("./a=b".to_owned()));
        assert_eq!(from_text("prog FOO=1", Runs::Daemon).map(|command| command.args), Ok(vec!["FOO=1".to_owned()]));
    }

    #[test]
    fn errors() {
        let error = from_text("a | b", Runs::Daemon).unwrap_err();
        assert_eq!(
            error,
            "`|` is a shell operator, but commands are not run through a shell; to use a shell, write it out: `[\"sh\", \"-c\", \"a | b\"]`"
        );
        assert!(from_text("echo 'oops", Runs::Daemon).unwrap_err().starts_with("unbalanced quotes"));
        assert!(from_text("echo \"oops", Runs::Daemon).unwrap_err().starts_with("unbalanced quotes"));
        assert!(from_text("", Runs::Daemon).unwrap_err().starts_with("empty command"));
        assert!(from_text("   ", Runs::Daemon).unwrap_err().starts_with("empty command"));
        assert!(from_text("''", Runs::Daemon).unwrap_err().starts_with("empty program name"));
        assert!(from_text("' ' x", Runs::Daemon).unwrap_err().starts_with("empty program name"));
    }

    #[test]
    fn lists() {
        let parsed = daemon_command(quote!(["python3", "-m", "http.server"])).unwrap();
        assert_eq!(parsed.program, "python3");
        assert_eq!(parsed.args, ["-m", "http.server"]);
        // Lists are explicit words: no shell rules apply.
        let piped = daemon_command(quote!(["sh", "-c", "a | b"])).unwrap();
        assert_eq!(piped.args, ["-c", "a | b"]);
        let error = |tokens| daemon_command(tokens).unwrap_err().to_string();
        assert!(error(quote!([])).starts_with("empty command"));
        assert!(error(quote!([""])).starts_with("empty program name"));
        assert!(error(quote!(["a", 1])).starts_with("expected a string literal"));
        assert_eq!(
            error(quote!(["python3", "-m" "http.server"])),
            "expected `,` between \"-m\" and \"http.server\": a command list is `[\"program\", \"arg\", ...]`"
        );
        assert!(error(quote!(worker)).starts_with("expected the command to run"));
        assert!(error(quote!(["sleep", "1\0"])).starts_with("the command contains a NUL byte"));
        assert!(from_text("sleep 1\0", Runs::Daemon).unwrap_err().starts_with("the command contains a NUL byte"));
    }

    /// Several strings, the words of a list written without its brackets,
    /// are told to be a list, on the second, where a daemon's were asked
    /// for a `;` after the first and a probe's got syn's "unexpected token".
    #[test]
    fn several_strings_are_told_to_be_a_list() {
        let error = |tokens, runs| (|input: ParseStream<'_>| parse(input, runs)).parse2(tokens).unwrap_err();
        let expected = "a command is one string, or a list of its words in brackets, not several strings: write";
        assert_eq!(
            error(quote!("python3", "-m", "http.server"), Runs::Daemon).to_string(),
            format!("{expected} `[\"python3\", \"-m\", \"http.server\"]`")
        );
        assert_eq!(
            error(quote!("pg_isready -h db" "-q"), Runs::Probe).to_string(),
            format!("{expected} `exec([\"pg_isready\", \"-h\", \"db\", \"-q\"])`")
        );
        // The strings are read, so that what follows is read after them.
        let mut rest = String::new();
        let parsed = (|input: ParseStream<'_>| {
            let result = parse(input, Runs::Daemon);
            rest = input.parse::<proc_macro2::TokenStream>()?.to_string();
            Ok(result)
        })
        .parse2(quote!("a", "b" { max = 1 }))
        .unwrap();
        assert!(parsed.is_err());
        assert_eq!(rest, quote!({ max = 1 }).to_string());
    }
}
