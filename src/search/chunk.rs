//! Splits long content into overlapping chunks on sentence boundaries.
//!
//! Invariants: chunks are byte ranges of the original text on `char` boundaries, in order,
//! covering every non-blank part of the text; each holds at most `size` characters unless
//! one word is longer; consecutive chunks share up to `overlap` characters of whole
//! sentences (or words, when a sentence had to be split).

use std::ops::Range;

/// Chunks `text` into byte ranges of at most `size` characters overlapping by about `overlap`.
pub fn chunk(text: &str, size: usize, overlap: usize) -> Vec<Range<usize>> {
    let size = size.max(1);
    let overlap = overlap.min(size / 2);
    let segments = segments(text, size);
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let mut end = start;
        let mut chars = 0;
        while end < segments.len() && (end == start || chars + segments[end].1 <= size) {
            chars += segments[end].1;
            end += 1;
        }
        if let Some(r) = trim(text, segments[start].0.start..segments[end - 1].0.end)
            && out.last().is_none_or(|p| r.end > p.end)
        {
            out.push(r);
        }
        if end == segments.len() {
            break;
        }
        // Step back over whole segments that fit in the overlap, always moving forward and
        // leaving room for at least one new segment (no chunk is inside the previous one).
        let mut next = end;
        let mut back = 0;
        while next > start + 1 && back + segments[next - 1].1 <= overlap && back + segments[next - 1].1 + segments[end].1 <= size {
            back += segments[next - 1].1;
            next -= 1;
        }
        start = next;
    }
    out
}

/// Sentences (with their trailing whitespace) as (byte range, char count); sentences longer
/// than `size` are cut at whitespace, words longer than `size` at char boundaries.
fn segments(text: &str, size: usize) -> Vec<(Range<usize>, usize)> {
    let mut out = Vec::new();
    for s in sentences(text) {
        let n = text[s.clone()].chars().count();
        if n <= size {
            out.push((s, n));
        } else {
            split_long(text, s, size, &mut out);
        }
    }
    out
}

fn sentences(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let boundary = match c {
            '\n' => true,
            '.' | '!' | '?' | '。' | '！' | '？' => iter.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if boundary {
            let mut end = i + c.len_utf8();
            while let Some(&(j, w)) = iter.peek() {
                if !w.is_whitespace() {
                    break;
                }
                end = j + w.len_utf8();
                iter.next();
            }
            out.push(start..end);
            start = end;
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

fn split_long(text: &str, r: Range<usize>, size: usize, out: &mut Vec<(Range<usize>, usize)>) {
    let mut piece_start = r.start;
    let mut count = 0;
    let mut last_space: Option<(usize, usize)> = None; // (byte end after the space, chars up to it)
    for (i, c) in text[r.clone()].char_indices() {
        let at = r.start + i;
        if count == size {
            let (cut, n) = last_space.filter(|&(b, _)| b > piece_start).unwrap_or((at, count));
            out.push((piece_start..cut, n));
            count -= n;
            piece_start = cut;
            last_space = None;
        }
        count += 1;
        if c.is_whitespace() {
            last_space = Some((at + c.len_utf8(), count));
        }
    }
    if piece_start < r.end {
        out.push((piece_start..r.end, count));
    }
}

fn trim(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    if t.is_empty() { None } else { Some(r.start + lead..r.start + lead + t.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(t: &'a str, rs: &[Range<usize>]) -> Vec<&'a str> {
        rs.iter().map(|r| &t[r.clone()]).collect()
    }

    #[test]
    fn short_text_is_one_chunk() {
        let t = "  Hello world. Bye.  ";
        assert_eq!(texts(t, &chunk(t, 100, 10)), vec!["Hello world. Bye."]);
        assert!(chunk("   \n ", 100, 10).is_empty());
    }

    #[test]
    fn splits_on_sentences_with_overlap() {
        let t = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let c = texts(t, &chunk(t, 36, 18));
        assert_eq!(c, vec!["One two three. Four five six.", "Four five six. Seven eight nine.", "Seven eight nine. Ten eleven twelve."]);
    }

    #[test]
    fn no_chunk_is_contained_in_the_previous_one() {
        let t = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let c = chunk(t, 32, 16);
        for w in c.windows(2) {
            assert!(w[1].end > w[0].end, "{:?}", texts(t, &c));
        }
        assert_eq!(texts(t, &c).last(), Some(&"Ten eleven twelve."));
    }

    #[test]
    fn long_sentences_split_at_words_and_chunks_respect_size() {
        let t = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";
        for r in chunk(t, 20, 5) {
            let s = &t[r];
            assert!(s.chars().count() <= 20, "{s:?}");
            assert!(!s.starts_with(' ') && !s.ends_with(' '));
        }
        let joined: String = chunk(t, 20, 0).iter().map(|r| &t[r.clone()]).collect::<Vec<_>>().join(" ");
        assert_eq!(joined, t);
    }

    #[test]
    fn multibyte_text_never_splits_a_char() {
        let t = "żółć ".repeat(100) + &"日本語".repeat(50);
        for r in chunk(&t, 17, 4) {
            assert!(t.is_char_boundary(r.start) && t.is_char_boundary(r.end));
            assert!(t[r].chars().count() <= 17);
        }
    }

    proptest::proptest! {
        #[test]
        fn chunks_cover_the_text_in_order_within_size(text in "[a-z .!?\n]{0,400}", size in 5usize..80, overlap in 0usize..40) {
            let c = chunk(&text, size, overlap);
            let mut covered = vec![false; text.len()];
            for w in c.windows(2) {
                proptest::prop_assert!(w[1].start >= w[0].start && w[1].end > w[0].end);
            }
            for r in &c {
                proptest::prop_assert!(text[r.clone()].chars().count() <= size);
                covered[r.clone()].iter_mut().for_each(|x| *x = true);
            }
            for (i, ch) in text.char_indices() {
                if !ch.is_whitespace() {
                    proptest::prop_assert!(covered[i], "byte {} of {:?} not in any chunk {:?}", i, text, c);
                }
            }
        }
    }
}
