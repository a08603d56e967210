//! The RouterOS API framing: length-prefixed words, sentences ended by an
//! empty word, and the typed meaning of command and reply sentences.
//!
//! Nothing here does I/O. [`Decoder`] is fed whatever bytes arrived (a TCP
//! segment, one byte, a megabyte) and hands out complete sentences; it never
//! panics, and it refuses words and sentences above its [`Limits`] before
//! buffering them, so a hostile or broken peer cannot make it allocate without
//! bound.

use std::collections::BTreeMap;

/// One row of a reply: property name to value. Values are strings on the wire.
pub type Row = BTreeMap<String, String>;

/// Bookkeeping cost of one word in a decoded sentence, counted against
/// [`Limits::max_sentence`] on top of its bytes (a `Vec` header and
/// allocator slack), so that many tiny words are bounded too.
const WORD_OVERHEAD: usize = 32;

/// Framing errors. After one, the byte stream is out of step: close it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("reserved control byte 0x{0:02x} where a word length was expected")]
    ControlByte(u8),
    #[error("a word of {len} bytes is larger than the limit of {limit}")]
    WordTooLong { len: u64, limit: usize },
    #[error("a sentence is larger than the limit of {limit} bytes")]
    SentenceTooLong { limit: usize },
    #[error("an empty word cannot be sent inside a sentence")]
    EmptyWord,
    #[error("an empty sentence cannot be sent")]
    EmptySentence,
    #[error("bad reply: {0}")]
    BadReply(String),
    #[error("bad command: {0}")]
    BadCommand(String),
}

/// Appends the length prefix of a word of `len` bytes.
pub fn encode_length(len: u32, out: &mut Vec<u8>) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0x3FFF => out.extend_from_slice(&((len | 0x8000) as u16).to_be_bytes()),
        0x4000..=0x1F_FFFF => out.extend_from_slice(&(len | 0xC0_0000).to_be_bytes()[1..]),
        0x20_0000..=0x0FFF_FFFF => out.extend_from_slice(&(len | 0xE000_0000).to_be_bytes()),
        _ => {
            out.push(0xF0);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Reads a length prefix from the start of `buf`: the length and the size of
/// the prefix, or `None` when more bytes are needed. A first byte of 0xF8 or
/// more is a control byte, which the API does not use: an error.
pub fn decode_length(buf: &[u8]) -> Result<Option<(u32, usize)>, CodecError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let (size, high) = match first {
        0x00..=0x7F => return Ok(Some((u32::from(first), 1))),
        0x80..=0xBF => (2, u32::from(first & 0x3F)),
        0xC0..=0xDF => (3, u32::from(first & 0x1F)),
        0xE0..=0xEF => (4, u32::from(first & 0x0F)),
        // MikroTik's reference decoder tests (byte & 0xF8) == 0xF0.
        0xF0..=0xF7 => (5, 0),
        _ => return Err(CodecError::ControlByte(first)),
    };
    let Some(rest) = buf.get(1..size) else {
        return Ok(None);
    };
    let len = rest
        .iter()
        .fold(high, |acc, &byte| (acc << 8) | u32::from(byte));
    Ok(Some((len, size)))
}

/// Appends one word (prefix and bytes).
pub fn encode_word(word: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let len = u32::try_from(word.len()).map_err(|_| CodecError::WordTooLong {
        len: word.len() as u64,
        limit: u32::MAX as usize,
    })?;
    encode_length(len, out);
    out.extend_from_slice(word);
    Ok(())
}

/// Encodes a sentence: its words, then the empty word. Words must not be
/// empty (an empty word would end the sentence early).
pub fn encode_sentence<W: AsRef<[u8]>>(words: &[W]) -> Result<Vec<u8>, CodecError> {
    if words.is_empty() {
        return Err(CodecError::EmptySentence);
    }
    let mut out = Vec::with_capacity(words.iter().map(|w| w.as_ref().len() + 5).sum::<usize>() + 1);
    for word in words {
        let word = word.as_ref();
        if word.is_empty() {
            return Err(CodecError::EmptyWord);
        }
        encode_word(word, &mut out)?;
    }
    out.push(0);
    Ok(out)
}

/// Memory bounds of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest word accepted, in bytes.
    pub max_word: usize,
    /// The largest sentence accepted: its bytes plus a small cost per word.
    pub max_sentence: usize,
}

impl Default for Limits {
    /// 8 MiB words, 32 MiB sentences: far above what the paths ispd reads
    /// return, far below what would hurt a server holding many connections.
    fn default() -> Self {
        Limits {
            max_word: 8 << 20,
            max_sentence: 32 << 20,
        }
    }
}

/// An incremental sentence decoder. Feed it bytes with [`Decoder::feed`],
/// then call [`Decoder::next_sentence`] until it returns `Ok(None)`.
///
/// Memory held is at most one partial word (bounded by the limits), the
/// words of the current sentence, and whatever the caller fed and has not
/// yet drained: feed in bounded chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: Limits,
    buf: Vec<u8>,
    pos: usize,
    words: Vec<Vec<u8>>,
    sentence_size: usize,
    failed: Option<CodecError>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            ..Self::default()
        }
    }

    /// Appends bytes read from the peer.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Compact only when the consumed prefix is at least half the buffer,
        // so that a large word arriving in small chunks is copied O(n) times
        // in total, not O(n) times per chunk.
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes fed but not yet part of a returned sentence's words.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True between sentences: nothing partial is buffered.
    pub fn is_idle(&self) -> bool {
        self.buffered() == 0 && self.words.is_empty()
    }

    /// The next complete sentence, `Ok(None)` when more bytes are needed.
    /// After an error every later call returns the same error.
    pub fn next_sentence(&mut self) -> Result<Option<Vec<Vec<u8>>>, CodecError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        loop {
            let available = &self.buf[self.pos..];
            let (len, prefix) = match decode_length(available) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(None),
                Err(err) => return Err(self.fail(err)),
            };
            let len = len as usize;
            if len == 0 {
                self.pos += prefix;
                self.sentence_size = 0;
                let words = std::mem::take(&mut self.words);
                if words.is_empty() {
                    // A lone empty word carries nothing; RouterOS never
                    // sends one. Skip it rather than return an empty sentence.
                    continue;
                }
                return Ok(Some(words));
            }
            if len > self.limits.max_word {
                let limit = self.limits.max_word;
                return Err(self.fail(CodecError::WordTooLong {
                    len: len as u64,
                    limit,
                }));
            }
            let size = self
                .sentence_size
                .saturating_add(len)
                .saturating_add(WORD_OVERHEAD);
            if size > self.limits.max_sentence {
                let limit = self.limits.max_sentence;
                return Err(self.fail(CodecError::SentenceTooLong { limit }));
            }
            let Some(word) = available.get(prefix..prefix + len) else {
                return Ok(None);
            };
            self.words.push(word.to_vec());
            self.pos += prefix + len;
            self.sentence_size = size;
        }
    }

    fn fail(&mut self, err: CodecError) -> CodecError {
        self.failed = Some(err.clone());
        self.buf = Vec::new();
        self.pos = 0;
        self.words = Vec::new();
        err
    }
}

/// Text of a word. RouterOS sends UTF-8 from API clients back as UTF-8, but
/// names typed on the console may be in a legacy 8-bit code page: bytes that
/// are not UTF-8 are read as Latin-1, which never fails and loses nothing.
pub fn word_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// What a word of a sentence is, after the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word<'a> {
    /// `=key=value`, split at the second `=` (the value may hold more).
    Attribute { key: &'a str, value: &'a str },
    /// `.key=value`, such as `.tag=7`.
    Api { key: &'a str, value: &'a str },
    /// `?...`, without the `?`.
    Query(&'a str),
    /// Anything else, such as the reason word of `!fatal`.
    Other(&'a str),
}

impl<'a> Word<'a> {
    pub fn classify(word: &'a str) -> Word<'a> {
        if let Some(rest) = word.strip_prefix('=') {
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            Word::Attribute { key, value }
        } else if word.starts_with('.') {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            Word::Api { key, value }
        } else if let Some(query) = word.strip_prefix('?') {
            Word::Query(query)
        } else {
            Word::Other(word)
        }
    }
}

/// A reply sentence, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    /// `!re`: one row of data.
    Re(Row),
    /// `!done`: the end of a command's replies; `ret` after `add` (the new id)
    /// and in the legacy login challenge.
    Done { ret: Option<String> },
    /// `!trap`: an error, followed by `!done`.
    Trap {
        category: Option<u32>,
        message: String,
    },
    /// `!fatal`: the router closes the connection.
    Fatal { reason: String },
    /// `!empty`: a print found nothing (RouterOS 7.18 and later).
    Empty,
}

/// A reply sentence with the tag of the command it answers, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    pub tag: Option<String>,
}

impl Reply {
    pub fn new(kind: ReplyKind) -> Self {
        Reply { kind, tag: None }
    }

    pub fn with_tag(mut self, tag: Option<String>) -> Self {
        self.tag = tag;
        self
    }

    /// Reads a decoded reply sentence.
    pub fn parse(words: &[Vec<u8>]) -> Result<Reply, CodecError> {
        let Some((first, rest)) = words.split_first() else {
            return Err(CodecError::BadReply("empty sentence".into()));
        };
        let first = word_text(first);
        let rest: Vec<String> = rest.iter().map(|w| word_text(w)).collect();
        let mut tag = None;
        let mut attributes = Row::new();
        let mut others = Vec::new();
        for word in &rest {
            match Word::classify(word) {
                Word::Attribute { key, value } => {
                    attributes.insert(key.to_owned(), value.to_owned());
                }
                Word::Api { key: ".tag", value } => tag = Some(value.to_owned()),
                // Other API words (none are documented in replies) and
                // stray words are ignored, as both reference clients do.
                Word::Api { .. } | Word::Query(_) => {}
                Word::Other(other) => others.push(other),
            }
        }
        let kind = match first.as_str() {
            "!re" => ReplyKind::Re(attributes),
            "!done" => ReplyKind::Done {
                ret: attributes.remove("ret"),
            },
            "!trap" => ReplyKind::Trap {
                category: match attributes.get("category") {
                    Some(text) => Some(text.parse().map_err(|_| {
                        CodecError::BadReply(format!("trap category {text:?} is not a number"))
                    })?),
                    None => None,
                },
                message: attributes.remove("message").unwrap_or_default(),
            },
            "!fatal" => ReplyKind::Fatal {
                reason: others
                    .first()
                    .map(|s| s.to_string())
                    .or_else(|| attributes.remove("message"))
                    .unwrap_or_default(),
            },
            "!empty" => ReplyKind::Empty,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(CodecError::BadReply(format!(
                    "unknown reply word {shown:?}"
                )));
            }
        };
        Ok(Reply { kind, tag })
    }

    /// The words of this reply, as a router sends them.
    pub fn to_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        match &self.kind {
            ReplyKind::Re(row) => {
                words.push("!re".to_owned());
                words.extend(row.iter().map(|(k, v)| format!("={k}={v}")));
            }
            ReplyKind::Done { ret } => {
                words.push("!done".to_owned());
                words.extend(ret.iter().map(|ret| format!("=ret={ret}")));
            }
            ReplyKind::Trap { category, message } => {
                words.push("!trap".to_owned());
                words.extend(category.iter().map(|c| format!("=category={c}")));
                words.push(format!("=message={message}"));
            }
            ReplyKind::Fatal { reason } => {
                words.push("!fatal".to_owned());
                words.push(reason.clone());
            }
            ReplyKind::Empty => words.push("!empty".to_owned()),
        }
        if let Some(tag) = &self.tag {
            words.push(format!(".tag={tag}"));
        }
        words
    }

    /// The encoded sentence.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for word in self.to_words() {
            // Reply words are never empty: each has a prefix such as `=`.
            let _ = encode_word(word.as_bytes(), &mut out);
        }
        out.push(0);
        out
    }
}

/// A command sentence: `/ppp/secret/print`, its `=key=value` attributes
/// (including `.id` and `.proplist`, which travel as attributes), its query
/// words and its tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub path: String,
    pub attributes: Vec<(String, String)>,
    /// Query words without the leading `?`: `name=alice`, `-disabled`, `#|`.
    pub queries: Vec<String>,
    pub tag: Option<String>,
}

impl Command {
    pub fn new(path: impl Into<String>) -> Self {
        Command {
            path: path.into(),
            ..Self::default()
        }
    }

    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Adds a query word; a leading `?` is optional.
    pub fn query(mut self, query: impl AsRef<str>) -> Self {
        let query = query.as_ref();
        self.queries
            .push(query.strip_prefix('?').unwrap_or(query).to_owned());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The words of this command as sent.
    pub fn to_words(&self) -> Vec<String> {
        let mut words = Vec::with_capacity(2 + self.attributes.len() + self.queries.len());
        words.push(self.path.clone());
        words.extend(self.attributes.iter().map(|(k, v)| format!("={k}={v}")));
        words.extend(self.queries.iter().map(|q| format!("?{q}")));
        if let Some(tag) = &self.tag {
            words.push(format!(".tag={tag}"));
        }
        words
    }

    /// The encoded sentence.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        if self.path.is_empty() {
            return Err(CodecError::BadCommand("the command path is empty".into()));
        }
        encode_sentence(&self.to_words())
    }

    /// Reads a decoded command sentence (the router's side).
    pub fn parse(words: &[Vec<u8>]) -> Result<Command, CodecError> {
        let Some((first, rest)) = words.split_first() else {
            return Err(CodecError::BadCommand("empty sentence".into()));
        };
        let path = word_text(first);
        if !path.starts_with('/') {
            let shown: String = path.chars().take(40).collect();
            return Err(CodecError::BadCommand(format!(
                "{shown:?} is not a command path"
            )));
        }
        let mut command = Command::new(path);
        for word in rest {
            let word = word_text(word);
            match Word::classify(&word) {
                Word::Attribute { key, value } => {
                    command.attributes.push((key.to_owned(), value.to_owned()))
                }
                Word::Api { key: ".tag", value } => command.tag = Some(value.to_owned()),
                // `.proplist=x` and `.id=x` without the leading `=` are read
                // as attributes too, as RouterOS does.
                Word::Api { key, value } => {
                    command.attributes.push((key.to_owned(), value.to_owned()))
                }
                Word::Query(query) => command.queries.push(query.to_owned()),
                Word::Other(other) => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(CodecError::BadCommand(format!("unexpected word {shown:?}")));
                }
            }
        }
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn length_bytes(len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_length(len, &mut out);
        out
    }

    #[test]
    fn lengths_use_the_shortest_form_at_each_boundary() {
        let cases: &[(u32, &[u8])] = &[
            (0, &[0x00]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x80]),
            (0x3FFF, &[0xBF, 0xFF]),
            (0x4000, &[0xC0, 0x40, 0x00]),
            (0x1F_FFFF, &[0xDF, 0xFF, 0xFF]),
            (0x20_0000, &[0xE0, 0x20, 0x00, 0x00]),
            (0x0FFF_FFFF, &[0xEF, 0xFF, 0xFF, 0xFF]),
            (0x1000_0000, &[0xF0, 0x10, 0x00, 0x00, 0x00]),
            (u32::MAX, &[0xF0, 0xFF, 0xFF, 0xFF, 0xFF]),
        ];
        for &(len, bytes) in cases {
            assert_eq!(length_bytes(len), bytes, "encoding {len:#x}");
            assert_eq!(
                decode_length(bytes),
                Ok(Some((len, bytes.len()))),
                "decoding {len:#x}"
            );
            // Any strict prefix asks for more bytes.
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode_length(&bytes[..cut]),
                    Ok(None),
                    "{len:#x} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn control_bytes_are_protocol_errors() {
        for byte in 0xF8..=0xFF {
            assert_eq!(
                decode_length(&[byte, 0, 0, 0, 0]),
                Err(CodecError::ControlByte(byte))
            );
            let mut decoder = Decoder::new();
            decoder.feed(&[byte]);
            assert_eq!(decoder.next_sentence(), Err(CodecError::ControlByte(byte)));
            // The decoder stays failed.
            decoder.feed(&[0x00]);
            assert!(decoder.next_sentence().is_err());
        }
    }

    #[test]
    fn a_sentence_arriving_one_byte_at_a_time_decodes_once() {
        let words = [
            "/ppp/secret/print",
            "=.proplist=name",
            "?name=alice",
            ".tag=1",
        ];
        let bytes = encode_sentence(&words).unwrap();
        let mut decoder = Decoder::new();
        let mut found = Vec::new();
        for byte in &bytes {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(sentence) = decoder.next_sentence().unwrap() {
                found.push(sentence);
            }
        }
        assert_eq!(found.len(), 1);
        let expected: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        assert_eq!(found[0], expected);
        assert!(decoder.is_idle());
    }

    #[test]
    fn a_large_word_in_small_chunks_crosses_the_two_and_three_byte_forms() {
        for len in [0x7F, 0x80, 0x3FFF, 0x4000, 0x1_0000] {
            let word = vec![b'x'; len];
            let bytes = encode_sentence(&[&word]).unwrap();
            let mut decoder = Decoder::new();
            let mut found = None;
            for chunk in bytes.chunks(1000) {
                decoder.feed(chunk);
                if let Some(sentence) = decoder.next_sentence().unwrap() {
                    found = Some(sentence);
                }
            }
            assert_eq!(found, Some(vec![word]), "length {len:#x}");
        }
    }

    #[test]
    fn words_above_the_limit_are_refused_before_they_are_buffered() {
        let mut decoder = Decoder::with_limits(Limits {
            max_word: 100,
            max_sentence: 1000,
        });
        let mut prefix = Vec::new();
        encode_length(0x0FFF_FFFF, &mut prefix);
        decoder.feed(&prefix);
        assert_eq!(
            decoder.next_sentence(),
            Err(CodecError::WordTooLong {
                len: 0x0FFF_FFFF,
                limit: 100
            })
        );
    }

    #[test]
    fn sentences_above_the_limit_are_refused() {
        let mut decoder = Decoder::with_limits(Limits {
            max_word: 100,
            max_sentence: 500,
        });
        let words = vec!["=a=b"; 100];
        decoder.feed(&encode_sentence(&words).unwrap());
        assert_eq!(
            decoder.next_sentence(),
            Err(CodecError::SentenceTooLong { limit: 500 })
        );
    }

    #[test]
    fn empty_words_and_sentences_cannot_be_encoded() {
        assert_eq!(encode_sentence(&["/a", ""]), Err(CodecError::EmptyWord));
        assert_eq!(encode_sentence::<&str>(&[]), Err(CodecError::EmptySentence));
    }

    fn parse(words: &[&str]) -> Result<Reply, CodecError> {
        let words: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        Reply::parse(&words)
    }

    #[test]
    fn replies_are_typed() {
        let re = parse(&["!re", "=name=a=b=c", "=.id=*1A", "=empty=", ".tag=7"]).unwrap();
        assert_eq!(re.tag.as_deref(), Some("7"));
        let ReplyKind::Re(row) = re.kind else {
            panic!("not a row: {re:?}")
        };
        assert_eq!(row["name"], "a=b=c", "split at the second = only");
        assert_eq!(row[".id"], "*1A");
        assert_eq!(row["empty"], "");

        assert_eq!(
            parse(&["!done", "=ret=*5"]).unwrap().kind,
            ReplyKind::Done {
                ret: Some("*5".into())
            }
        );
        assert_eq!(
            parse(&["!done"]).unwrap().kind,
            ReplyKind::Done { ret: None }
        );
        assert_eq!(
            parse(&["!trap", "=category=1", "=message=bad value"])
                .unwrap()
                .kind,
            ReplyKind::Trap {
                category: Some(1),
                message: "bad value".into()
            }
        );
        assert_eq!(
            parse(&[
                "!trap",
                "=message=failure: secret with the same name already exists"
            ])
            .unwrap()
            .kind,
            ReplyKind::Trap {
                category: None,
                message: "failure: secret with the same name already exists".into()
            }
        );
        assert_eq!(
            parse(&["!fatal", "not logged in"]).unwrap().kind,
            ReplyKind::Fatal {
                reason: "not logged in".into()
            }
        );
        assert_eq!(parse(&["!empty", ".tag=3"]).unwrap().kind, ReplyKind::Empty);
        assert!(matches!(parse(&["!bogus"]), Err(CodecError::BadReply(_))));
        assert!(matches!(
            parse(&["!trap", "=category=x"]),
            Err(CodecError::BadReply(_))
        ));
    }

    #[test]
    fn non_utf8_words_are_read_as_latin1() {
        assert_eq!(word_text(b"caf\xe9"), "café");
        assert_eq!(word_text("café".as_bytes()), "café");
    }

    #[test]
    fn commands_round_trip_through_their_words() {
        let command = Command::new("/ppp/secret/print")
            .attribute(".proplist", "name,.id")
            .query("?name=alice")
            .query("-disabled")
            .query("#|");
        let mut command = command;
        command.tag = Some("9".into());
        let words: Vec<Vec<u8>> = command
            .to_words()
            .into_iter()
            .map(String::into_bytes)
            .collect();
        assert_eq!(
            command.to_words(),
            [
                "/ppp/secret/print",
                "=.proplist=name,.id",
                "?name=alice",
                "?-disabled",
                "?#|",
                ".tag=9"
            ]
        );
        assert_eq!(Command::parse(&words).unwrap(), command);
    }

    fn word() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..40),
            proptest::collection::vec(any::<u8>(), 120..300),
        ]
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunks_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..64,
        ) {
            let mut decoder = Decoder::with_limits(Limits { max_word: 200, max_sentence: 400 });
            for piece in bytes.chunks(chunk) {
                decoder.feed(piece);
                while let Ok(Some(words)) = decoder.next_sentence() {
                    let _ = Reply::parse(&words);
                    let _ = Command::parse(&words);
                }
            }
        }

        #[test]
        fn lengths_round_trip(len in any::<u32>()) {
            let bytes = length_bytes(len);
            prop_assert_eq!(decode_length(&bytes), Ok(Some((len, bytes.len()))));
        }

        #[test]
        fn sentences_round_trip_in_any_chunks(
            sentences in proptest::collection::vec(proptest::collection::vec(word(), 1..6), 1..5),
            chunk in 1usize..50,
        ) {
            let mut stream = Vec::new();
            for sentence in &sentences {
                stream.extend(encode_sentence(sentence).unwrap());
            }
            let mut decoder = Decoder::new();
            let mut found = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.feed(piece);
                while let Some(sentence) = decoder.next_sentence().unwrap() {
                    found.push(sentence);
                }
            }
            prop_assert_eq!(found, sentences);
            prop_assert!(decoder.is_idle());
        }

        #[test]
        fn rows_round_trip_through_reply_words(
            row in proptest::collection::btree_map("[a-z.-]{1,10}", "[ -~]{0,20}", 0..6),
            tag in proptest::option::of("[0-9]{1,4}"),
        ) {
            let reply = Reply { kind: ReplyKind::Re(row), tag };
            let mut decoder = Decoder::new();
            decoder.feed(&reply.encode());
            let words = decoder.next_sentence().unwrap().unwrap();
            prop_assert_eq!(Reply::parse(&words).unwrap(), reply);
        }
    }
}
