//! What the simulated recordings say: voicemail-like texts for the legacy
//! transcriptions and two-party dialogues (a customer and a dispatcher of
//! a plumbing company) for Voice Intelligence, from a small deterministic
//! vocabulary with distinctive searchable words ("leak", "boiler",
//! "invoice", "appointment", "plumber", "Tuesday", ...).

use crate::generator::splitmix64;

/// A deterministic stream of choices.
pub(crate) struct Mix(u64);

impl Mix {
    pub(crate) fn new(seed: u64, salt: u64) -> Mix {
        Mix(splitmix64(seed ^ splitmix64(salt)))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % (hi - lo) as u64) as i64
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &[
    "Maria", "John", "Linh", "Patrick", "Wei", "Priya", "Robert", "Sarah", "Ahmed", "Elena",
];
const AGENTS: &[&str] = &["Dana", "Alice", "Bob", "Carol"];
const DAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
const SLOTS: &[&str] = &[
    "eight and ten",
    "ten and noon",
    "one and three",
    "three and five",
];
const STREETS: &[&str] = &[
    "Maple Street",
    "Elm Avenue",
    "Harbor Road",
    "Chestnut Lane",
    "Pleasant Street",
];
const PROBLEMS: &[&str] = &[
    "a leak under the kitchen sink",
    "a boiler that won't light",
    "a burst pipe in the basement",
    "a clogged drain in the bathroom",
    "a water heater that keeps making noise",
    "a leak coming through the ceiling",
    "no hot water since this morning",
];
const VOICEMAIL_TOPICS: &[&str] = &[
    "the leak in my basement",
    "the invoice you sent last week",
    "rescheduling my appointment on Tuesday",
    "an annual boiler service",
    "getting a plumber out this week",
    "a quote for a new water heater",
    "the payment on my last invoice",
];
const VOICEMAIL_DETAILS: &[&str] = &[
    "It's not urgent, but I'd like to sort it out soon.",
    "The water is starting to come through, so sooner is better.",
    "I think the amount on the invoice is wrong.",
    "I can't make it on Tuesday anymore, could we move it?",
    "Your plumber was here last month and it's happening again.",
    "The boiler is making a banging noise when it starts.",
];

fn phone(mix: &mut Mix) -> String {
    format!(
        "{} {} {:04}",
        mix.pick(&["978", "617", "508", "781"]),
        mix.range(200, 999),
        mix.range(0, 10_000)
    )
}

/// A voicemail-like text (a legacy transcription).
pub(crate) fn voicemail(seed: u64) -> String {
    let mut mix = Mix::new(seed, 0x70CE);
    let name = mix.pick(NAMES);
    let topic = mix.pick(VOICEMAIL_TOPICS);
    let detail = mix.pick(VOICEMAIL_DETAILS);
    let number = phone(&mut mix);
    let close = mix.pick(&[
        "Thanks, bye.",
        "Thank you.",
        "Talk to you soon.",
        "Have a good day.",
    ]);
    format!(
        "Hi, this is {name}, I'm calling about {topic}. {detail} Could you call me back at {number}? {close}"
    )
}

/// One line of a dialogue: the speaker's media channel (1 = customer,
/// 2 = dispatcher) and the words.
pub(crate) type Line = (u32, String);

/// A dialogue of `count` sentences (at least 2) between a customer (media
/// channel 1) and a dispatcher (media channel 2), who speaks first.
pub(crate) fn dialogue(seed: u64, count: usize) -> Vec<Line> {
    let mut mix = Mix::new(seed, 0xD1A1);
    let agent = mix.pick(AGENTS);
    let name = mix.pick(NAMES);
    let problem = mix.pick(PROBLEMS);
    let day = mix.pick(DAYS);
    let slot = mix.pick(SLOTS);
    let street = mix.pick(STREETS);
    let number = mix.range(3, 480);
    let opening: Vec<Line> = vec![
        (
            2,
            format!("Thanks for calling Acme Plumbing, this is {agent}, how can I help you today?"),
        ),
        (
            1,
            format!("Hi, this is {name}, I've got {problem} and it's getting worse."),
        ),
        (
            2,
            "I'm sorry to hear that. Can I get your address, please?".into(),
        ),
        (1, format!("Sure, it's {number} {street}.")),
    ];
    let middle: Vec<Line> = vec![
        (
            2,
            "Were you able to shut off the water at the main valve?".into(),
        ),
        (
            1,
            mix.pick(&[
                "Yes, I turned it off about an hour ago.",
                "I'm not sure where the valve is, to be honest.",
                "It's off now, but there's still water on the floor.",
            ])
            .into(),
        ),
        (
            2,
            "Okay. Is the boiler on the same floor as the leak?".into(),
        ),
        (
            1,
            "No, the boiler is in the basement, the leak is upstairs.".into(),
        ),
        (2, "Got it. Do you have an account with us already?".into()),
        (
            1,
            mix.pick(&[
                "Yes, I paid your last invoice in January.",
                "No, this is the first time I'm calling.",
                "I think so, a plumber came out last year.",
            ])
            .into(),
        ),
        (
            2,
            "And is there a dog or anything the plumber should know about?".into(),
        ),
        (1, "No, just ring the bell at the side door.".into()),
        (2, "Let me check what we have available this week.".into()),
        (1, "Thanks, I appreciate it.".into()),
    ];
    let closing: Vec<Line> = vec![
        (
            2,
            format!("We can send a plumber on {day} between {slot}. Does that work for you?"),
        ),
        (1, format!("{day} works for me.")),
        (
            2,
            "Great, the appointment is booked. You'll get the invoice by email after the visit."
                .into(),
        ),
        (1, "Perfect, thank you so much.".into()),
        (2, "You're welcome, have a good day.".into()),
    ];
    let count = count.max(2);
    let mut lines = Vec::with_capacity(count);
    let tail = closing.len().min(count.saturating_sub(2));
    let head = opening.len().min(count - tail);
    lines.extend(opening.into_iter().take(head));
    let mut i = 0;
    while lines.len() + tail < count {
        lines.push(middle[i % middle.len()].clone());
        i += 1;
    }
    lines.extend(closing.into_iter().skip(5 - tail.min(5)));
    lines.truncate(count);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogues_have_the_asked_length_and_alternate_speakers() {
        for count in [2, 3, 5, 9, 10, 40] {
            let lines = dialogue(7, count);
            assert_eq!(lines.len(), count);
            assert_eq!(lines[0].0, 2);
            assert!(lines
                .iter()
                .all(|(c, t)| (*c == 1 || *c == 2) && !t.is_empty()));
        }
        assert_eq!(dialogue(3, 12), dialogue(3, 12));
        assert!(voicemail(4).starts_with("Hi, this is "));
    }
}
