//! WeChat's content check (msgSecCheck v2) of the free texts users write:
//! order notes and details, dispute texts, courier names. A risky text is
//! refused; one WeChat wants a person to look at is accepted and flagged
//! for operators. A content-check outage never stops ordering: the text is
//! accepted and flagged. Calls go through the token refresher, so a
//! refused access_token (40001) is refreshed and the check asked again once.

use std::sync::Arc;

use crate::auth::token::Tokens;
use crate::domain::OpenId;
use crate::wechat::{ContentScene, ContentVerdict, WeChat};

/// A text WeChat refused.
#[derive(Debug, thiserror::Error)]
#[error("{field} was refused by WeChat's content check; please reword it")]
pub struct Refused {
    /// The request field that holds it.
    pub field: String,
}

/// Whether operators should look at what was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Nothing to see.
    Clean,
    /// WeChat asked for a person's look, or could not check.
    Flagged,
}

impl Checked {
    /// True when operators should look.
    pub fn is_flagged(self) -> bool {
        self == Checked::Flagged
    }
}

/// `lastmile_content_checks_total` by outcome, registered once: every
/// order is checked, and a key lookup per check is measurable there.
#[derive(Clone)]
struct Outcomes {
    pass: metrics::Counter,
    review: metrics::Counter,
    risky: metrics::Counter,
    unavailable: metrics::Counter,
}

impl Outcomes {
    fn register() -> Self {
        let outcome =
            |o: &'static str| metrics::counter!("lastmile_content_checks_total", "outcome" => o);
        Self {
            pass: outcome("pass"),
            review: outcome("review"),
            risky: outcome("risky"),
            unavailable: outcome("unavailable"),
        }
    }

    fn of(&self, verdict: ContentVerdict) -> &metrics::Counter {
        match verdict {
            ContentVerdict::Pass => &self.pass,
            ContentVerdict::Review => &self.review,
            ContentVerdict::Risky => &self.risky,
        }
    }
}

/// The checker: the WeChat client and the token refresher.
#[derive(Clone)]
pub struct ContentCheck {
    wechat: Arc<dyn WeChat>,
    tokens: Tokens,
    outcomes: Outcomes,
}

impl ContentCheck {
    /// A checker on these clients (after the metrics recorder is installed).
    pub fn new(wechat: Arc<dyn WeChat>, tokens: Tokens) -> Self {
        Self {
            wechat,
            tokens,
            outcomes: Outcomes::register(),
        }
    }

    /// Checks `texts` (field, text) written by `author`; empty ones are
    /// skipped. The first refused field is named.
    pub async fn check(
        &self,
        author: &OpenId,
        scene: ContentScene,
        texts: &[(&str, &str)],
    ) -> Result<Checked, Refused> {
        // One call for all of them (the usual, clean case); only a refusal
        // is asked again text by text, to name the field.
        let mut joined = String::with_capacity(texts.iter().map(|(_, t)| t.len() + 1).sum());
        let mut first = None;
        let mut count = 0;
        for (field, text) in texts.iter().filter(|(_, text)| !text.trim().is_empty()) {
            if count > 0 {
                joined.push('\n');
            }
            joined.push_str(text);
            first.get_or_insert((*field, *text));
            count += 1;
        }
        let Some(first) = first else {
            return Ok(Checked::Clean);
        };
        let verdict = match self.ask(author, scene, &joined).await {
            Ok(verdict) => verdict,
            Err(()) => return Ok(Checked::Flagged),
        };
        if verdict != ContentVerdict::Risky || count == 1 {
            return judge(&[first], &[verdict], &self.outcomes);
        }
        let texts: Vec<(&str, &str)> = texts
            .iter()
            .copied()
            .filter(|(_, text)| !text.trim().is_empty())
            .collect();
        let mut verdicts = Vec::with_capacity(texts.len());
        for (_, text) in &texts {
            let verdict = self.ask(author, scene, text).await;
            verdicts.push(verdict.unwrap_or(ContentVerdict::Review));
        }
        judge(&texts, &verdicts, &self.outcomes)
    }

    /// One msgSecCheck through the token refresher; Err: WeChat could not
    /// check (counted and logged here).
    async fn ask(
        &self,
        author: &OpenId,
        scene: ContentScene,
        content: &str,
    ) -> Result<ContentVerdict, ()> {
        let wechat = &self.wechat;
        let answer = self
            .tokens
            .call(|token| async move {
                wechat
                    .msg_sec_check(&token, author.as_str(), scene, content)
                    .await
            })
            .await;
        answer.map_err(|e| {
            tracing::warn!(error = %e, "content check unavailable; texts accepted and flagged");
            self.outcomes.unavailable.increment(1);
        })
    }
}

/// The refusal of the first risky text, or whether any needs a look.
fn judge(
    texts: &[(&str, &str)],
    verdicts: &[ContentVerdict],
    outcomes: &Outcomes,
) -> Result<Checked, Refused> {
    let mut checked = Checked::Clean;
    for ((field, _), verdict) in texts.iter().zip(verdicts) {
        outcomes.of(*verdict).increment(1);
        match verdict {
            ContentVerdict::Risky => {
                return Err(Refused {
                    field: (*field).to_owned(),
                })
            }
            ContentVerdict::Review => checked = Checked::Flagged,
            ContentVerdict::Pass => {}
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_risky_text_is_named_and_a_review_flags() {
        let texts = [
            ("note", "a"),
            ("pickup.detail", "b"),
            ("dropoff.detail", "c"),
        ];
        use ContentVerdict::*;
        let o = Outcomes::register();
        assert_eq!(
            judge(&texts, &[Pass, Pass, Pass], &o).ok(),
            Some(Checked::Clean)
        );
        assert_eq!(
            judge(&texts, &[Pass, Review, Pass], &o).ok(),
            Some(Checked::Flagged)
        );
        let refused = judge(&texts, &[Review, Risky, Risky], &o)
            .err()
            .map(|r| r.field);
        assert_eq!(refused.as_deref(), Some("pickup.detail"));
    }

    #[test]
    fn an_unknown_suggestion_is_left_to_a_person() {
        assert_eq!(ContentVerdict::parse("pass"), ContentVerdict::Pass);
        assert_eq!(ContentVerdict::parse("risky"), ContentVerdict::Risky);
        assert_eq!(ContentVerdict::parse("review"), ContentVerdict::Review);
        assert_eq!(ContentVerdict::parse("new"), ContentVerdict::Review);
    }
}
