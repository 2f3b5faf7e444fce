//! The character vocabulary of the demo language model (`models/charlm`): 96 ids, id 0 is
//! `'\n'`, ids 1..=95 are the printable ASCII bytes 32..=126 (id = byte − 31).

/// Vocabulary size.
pub const VOCAB: usize = 96;

/// The id of a character, or `None` if it is outside the vocabulary.
pub fn encode_char(c: char) -> Option<u32> {
    match c {
        '\n' => Some(0),
        ' '..='~' => Some(c as u32 - 31),
        _ => None,
    }
}

/// The character of an id (`'?'` outside the vocabulary).
pub fn decode(id: u32) -> char {
    match id {
        0 => '\n',
        1..=95 => char::from(id as u8 + 31),
        _ => '?',
    }
}

/// Encodes `s`, skipping characters outside the vocabulary.
pub fn encode(s: &str) -> Vec<u32> {
    s.chars().filter_map(encode_char).collect()
}

/// Bits per character of a stream and top-1 predictions: feeds `ids` one at a time and scores
/// each next character; returns (bits per character, the argmax after every step but the last).
pub fn bits_per_char(
    session: &mut runnel::Session<'_, '_>,
    ids: &[u32],
) -> Result<(f64, Vec<u32>), runnel::Error> {
    let mut logits = vec![0f32; session.model().output_dim()];
    let mut bits = 0f64;
    let mut argmax = Vec::with_capacity(ids.len());
    for w in ids.windows(2) {
        session.step_token(w[0], &mut logits)?;
        bits += surprisal_bits(&logits, w[1] as usize);
        argmax.push(argmax_of(&logits));
    }
    Ok((bits / (ids.len().saturating_sub(1).max(1)) as f64, argmax))
}

/// `−log2 softmax(logits)[next]`, in f64: the bits a model spends on the token that came next.
pub fn surprisal_bits(logits: &[f32], next: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
    let lse = max
        + logits
            .iter()
            .map(|&v| (v as f64 - max).exp())
            .sum::<f64>()
            .ln();
    (lse - logits[next] as f64) / std::f64::consts::LN_2
}

/// Index of the largest logit (the first one on ties).
pub fn argmax_of(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_vocabulary() {
        for id in 0..VOCAB as u32 {
            assert_eq!(encode_char(decode(id)), Some(id));
        }
        assert_eq!(encode("a\u{e9}b"), vec![66, 67]);
    }
}
