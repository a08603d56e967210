//! Fuzzes the RouterOS API decoder (src/mikrotik/routeros/codec.rs), the
//! code that reads whatever a router, or anything pretending to be one,
//! sends to ispd.
//!
//! Properties checked on arbitrary bytes:
//! - decoding never panics, and stays within its limits;
//! - feeding the bytes in small chunks (the first input byte picks the
//!   size) gives exactly what feeding them at once gives: the same
//!   sentences, then the same error or the same remainder;
//! - every decoded sentence can be read as a reply and as a command
//!   without panicking, and re-encodes to bytes that decode back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/mikrotik/routeros/codec.rs"]
#[allow(dead_code)]
mod codec;

use codec::{encode_sentence, CodecError, Command, Decoder, Limits, Reply};

const LIMITS: Limits = Limits {
    max_word: 4 << 10,
    max_sentence: 16 << 10,
};

type Decoded = (Vec<Vec<Vec<u8>>>, Option<CodecError>, usize);

fn decode(data: &[u8], chunk: usize) -> Decoded {
    let mut decoder = Decoder::with_limits(LIMITS);
    let mut sentences = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        decoder.feed(piece);
        loop {
            match decoder.next_sentence() {
                Ok(Some(words)) => {
                    let size: usize = words.iter().map(Vec::len).sum();
                    assert!(size <= LIMITS.max_sentence);
                    assert!(words
                        .iter()
                        .all(|w| !w.is_empty() && w.len() <= LIMITS.max_word));
                    sentences.push(words);
                }
                Ok(None) => break,
                Err(err) => {
                    // The error sticks.
                    assert_eq!(decoder.next_sentence(), Err(err.clone()));
                    return (sentences, Some(err), 0);
                }
            }
        }
    }
    let buffered = decoder.buffered();
    (sentences, None, buffered)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let whole = decode(bytes, bytes.len());
    let chunked = decode(bytes, usize::from(first % 64) + 1);
    assert_eq!(whole.0, chunked.0, "same sentences whatever the chunking");
    assert_eq!(whole.1, chunked.1, "same error whatever the chunking");
    if whole.1.is_none() {
        assert_eq!(whole.2, chunked.2, "same remainder");
    }
    for words in &whole.0 {
        let _ = Reply::parse(words);
        let _ = Command::parse(words);
        let encoded = encode_sentence(words).expect("decoded words re-encode");
        let again = decode(&encoded, encoded.len());
        assert_eq!(again.0, vec![words.clone()]);
        assert!(again.1.is_none() && again.2 == 0);
    }
});
