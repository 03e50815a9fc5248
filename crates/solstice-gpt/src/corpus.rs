//! The default corpus: short stories written by a small grammar, made at
//! run time from a fixed seed, so the trainer needs no download.
//!
//! Each story introduces a character by name and kind, then tells a few
//! sentences about them, referring back by name, by kind or by pronoun. A
//! model that has learned spells the words, follows the grammar, and copies
//! the name it was given earlier in the story.

/// The default corpus: `stories` stories, the same every time.
pub fn default_corpus(stories: usize) -> String {
    let mut rng = SplitMix(0x5eed_5011_ce00_0001);
    let mut text = String::new();
    for _ in 0..stories {
        story(&mut rng, &mut text);
        text.push_str("\n\n");
    }
    text
}

/// Stories in the default corpus: about 400 kB of text.
pub const DEFAULT_STORIES: usize = 1600;

const NAMES_SHE: &[&str] = &["Anna", "Clara", "Mia", "Rosa", "Lena", "Ivy", "Nora", "Eva"];
const NAMES_HE: &[&str] = &["Ben", "Tom", "Leo", "Max", "Sam", "Otto", "Finn", "Hugo"];
const KINDS: &[&str] = &[
    "fox", "bird", "cat", "dog", "bear", "rabbit", "mouse", "frog", "owl", "goat",
];
const ADJECTIVES: &[&str] = &[
    "little", "clever", "brave", "sleepy", "happy", "curious", "kind", "old", "young", "tiny",
];
const COLOURS: &[&str] = &[
    "red", "blue", "green", "yellow", "small", "big", "shiny", "round", "heavy", "soft",
];
const THINGS: &[&str] = &[
    "ball", "apple", "boat", "hat", "book", "cake", "key", "box", "kite", "lamp", "stone", "shell",
];
const PLACES: &[&str] = &[
    "near the river",
    "in the forest",
    "under the tree",
    "on the hill",
    "by the sea",
    "at the market",
    "behind the house",
    "in the garden",
];
const TIMES: &[&str] = &[
    "One morning",
    "One day",
    "In the evening",
    "Later",
    "At night",
    "After lunch",
];
const FOUND: &[&str] = &[
    "found", "saw", "lost", "wanted", "carried", "painted", "hid", "washed",
];
const FEELINGS: &[&str] = &[
    "happy",
    "sad",
    "tired",
    "hungry",
    "proud",
    "surprised",
    "calm",
];
const FRIENDS: &[&str] = &[
    "the farmer",
    "the baker",
    "a friend",
    "the teacher",
    "the king",
    "the queen",
    "grandmother",
];
const SAYINGS: &[&str] = &[
    "What a good day",
    "I like it",
    "Look at this",
    "Where is it",
    "Let us go home",
    "Thank you",
];

fn story(rng: &mut SplitMix, out: &mut String) {
    let she = rng.below(2) == 0;
    let name = if she {
        rng.pick(NAMES_SHE)
    } else {
        rng.pick(NAMES_HE)
    };
    let pronoun = if she { "She" } else { "He" };
    let possessive = if she { "her" } else { "his" };
    let kind = rng.pick(KINDS);
    let adjective = rng.pick(ADJECTIVES);
    out.push_str(&format!(
        "Once upon a time there was a {adjective} {kind} named {name}."
    ));
    let thing = rng.pick(THINGS);
    let colour = rng.pick(COLOURS);
    let sentences = 3 + rng.below(4);
    for i in 0..sentences {
        let subject = match rng.below(3) {
            0 => name.to_string(),
            1 => format!("The {kind}"),
            _ => pronoun.to_string(),
        };
        let sentence = match (i, rng.below(5)) {
            (0, _) | (_, 0) => format!(
                "{}, {} {} {} {colour} {thing} {}.",
                rng.pick(TIMES),
                lower_first(&subject),
                rng.pick(FOUND),
                article(colour),
                rng.pick(PLACES),
            ),
            (_, 1) => format!("{subject} was {}.", rng.pick(FEELINGS)),
            (_, 2) => format!("Then {name} gave the {thing} to {}.", rng.pick(FRIENDS)),
            (_, 3) => format!("\"{}!\" said {name}.", rng.pick(SAYINGS)),
            _ => format!(
                "{subject} took {possessive} {thing} and went {}.",
                rng.pick(PLACES)
            ),
        };
        out.push(' ');
        out.push_str(&sentence);
    }
    out.push_str(&format!(" The end of the story of {name}."));
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// `The fox` stays capitalised only at the start of a sentence.
fn lower_first(subject: &str) -> String {
    if subject == "He" || subject == "She" {
        subject.to_lowercase()
    } else if let Some(rest) = subject.strip_prefix("The ") {
        format!("the {rest}")
    } else {
        subject.to_string()
    }
}

/// SplitMix64: a tiny, fixed generator, so the corpus never changes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_fixed_and_ascii() {
        let a = default_corpus(20);
        assert_eq!(a, default_corpus(20));
        assert!(a.is_ascii());
        assert!(a.starts_with("Once upon a time there was a "));
        assert!(!a.contains(", He ") && !a.contains(", The "));
        assert_eq!(a.matches("Once upon a time").count(), 20);
    }
}
