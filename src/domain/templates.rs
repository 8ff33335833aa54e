//! Rubric templates built into the binary: starting points an admin can
//! instantiate and then revise. Every anchor describes observed behaviour —
//! what the candidate did or said — never character (see ../shared/seeds/:
//! teams fail less from missing technical skill than from weak communication,
//! adaptability and collaboration, so both carry equal weight).

use super::model::{Anchor, Competency, Dimension, RubricContent, Scale};

/// A built-in rubric template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Stable id, e.g. `backend-engineer`.
    pub id: &'static str,
    pub rubric: RubricContent,
}

const LABELS: [&str; 4] = ["Weak", "Mixed", "Strong", "Exceptional"];

/// (key, title, dimension, description, [anchor for 1, 2, 3, 4])
type Spec = (&'static str, &'static str, &'static str, &'static str, [&'static str; 4]);

fn build(title: &str, competencies: &[Spec]) -> RubricContent {
    RubricContent {
        title: title.to_string(),
        scale: Scale { min: 1, max: 4 },
        dimensions: vec![
            Dimension { key: "technical".into(), title: "Technical".into(), weight: 0.5 },
            Dimension { key: "communication".into(), title: "Communication and collaboration".into(), weight: 0.5 },
        ],
        competencies: competencies
            .iter()
            .map(|(key, title, dimension, description, anchors)| Competency {
                key: key.to_string(),
                title: title.to_string(),
                dimension_key: dimension.to_string(),
                weight: 1.0,
                description: description.to_string(),
                anchors: anchors
                    .iter()
                    .enumerate()
                    .map(|(i, text)| Anchor {
                        score: i as i32 + 1,
                        label: LABELS[i].to_string(),
                        description: text.to_string(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

const BACKEND: [Spec; 10] = [
    (
        "api_design",
        "API design",
        "technical",
        "Designing interfaces other teams can build on for years.",
        [
            "Proposed endpoints without a resource model; could not say how errors or versions would work.",
            "Sketched resources and methods; needed prompting for pagination, errors or compatibility.",
            "Designed resources, errors, pagination and versioning unprompted and explained each choice.",
            "Also anticipated evolution and misuse (idempotency, backwards-compatible changes) and weighed alternatives aloud.",
        ],
    ),
    (
        "data_modelling",
        "Data modelling",
        "technical",
        "Choosing schemas, keys and constraints that keep data correct.",
        [
            "Produced a schema with no keys or constraints; could not explain how duplicates are prevented.",
            "Chose reasonable tables; missed an integrity rule or an obvious query pattern when asked.",
            "Modelled entities, keys, constraints and indexes from the access patterns and justified them.",
            "Also discussed migrations, multi-tenancy or consistency trade-offs and changed the model when a new requirement appeared.",
        ],
    ),
    (
        "debugging_performance",
        "Debugging and performance",
        "technical",
        "Finding causes from evidence, and measuring before optimising.",
        [
            "Guessed at causes and changed code without forming or testing a hypothesis.",
            "Found the fault with hints; proposed optimisations without measuring.",
            "Formed hypotheses, used logs, tests or profiles to narrow the cause, and measured the fix.",
            "Also explained the mechanism precisely and proposed how to prevent the class of bug.",
        ],
    ),
    (
        "testing_ci",
        "Testing and CI",
        "technical",
        "Writing tests that pin behaviour and keep main releasable.",
        [
            "Wrote no tests, or tests without assertions.",
            "Tested the happy path only; could not say what would catch a regression.",
            "Wrote focused tests for edge cases and failures first, and described how CI gates a change.",
            "Also chose the right level (unit, property, end-to-end) for each risk and explained the trade-off.",
        ],
    ),
    (
        "security",
        "Security",
        "technical",
        "Spotting and closing the ways a system can be abused.",
        [
            "Did not consider authentication, authorisation or input validation.",
            "Mentioned authentication; missed tenant isolation, injection or secret handling when probed.",
            "Identified the main threats (authz, injection, secrets, data exposure) and designed mitigations.",
            "Also reasoned from an attacker's view, including existence leaks and audit, and prioritised by impact.",
        ],
    ),
    (
        "explaining_tradeoffs",
        "Explaining trade-offs to non-engineers",
        "communication",
        "Making technical choices understandable to the people who decide.",
        [
            "Used jargon the listener did not follow; could not restate the choice in plain words.",
            "Explained the option chosen; struggled to express its cost in terms the listener cares about.",
            "Framed options by their effect on users, time and risk, and checked the listener understood.",
            "Also adapted the explanation when the listener pushed back and reached a decision together.",
        ],
    ),
    (
        "code_review_empathy",
        "Code-review empathy",
        "communication",
        "Reviewing and being reviewed so that code and people improve.",
        [
            "Comments were dismissive or about the author rather than the code; reacted defensively to feedback.",
            "Gave correct but terse comments; accepted feedback without engaging with it.",
            "Gave specific, kind, actionable comments with reasons, and asked questions before judging.",
            "Also separated must-fix from preference and described changing their own view after a review.",
        ],
    ),
    (
        "written_clarity",
        "Written clarity and documentation",
        "communication",
        "Writing that lets the next engineer act without asking.",
        [
            "Written answer was disorganised or omitted what the reader needs to act.",
            "Covered the essentials; the reader would still need to ask follow-up questions.",
            "Wrote a structured, concise explanation with the decision, the reasons and the next steps.",
            "Also anticipated the reader's questions and chose examples that made it unambiguous.",
        ],
    ),
    (
        "collaboration_conflict",
        "Collaboration and conflict resolution",
        "communication",
        "Working through disagreement to a shared decision.",
        [
            "Described conflicts as the other person's fault; gave no example of changing course.",
            "Described a disagreement resolved by escalation or giving in, without understanding the other view.",
            "Described seeking the other side's reasons, finding common ground and agreeing on a way forward.",
            "Also described repairing the working relationship afterwards and what they changed in how they work.",
        ],
    ),
    (
        "mentoring",
        "Mentoring",
        "communication",
        "Helping others grow through teaching and feedback.",
        [
            "Gave no example of helping someone learn; described doing the work for them.",
            "Answered others' questions when asked; no example of deliberate teaching.",
            "Described a concrete case of guiding someone through a problem with questions and feedback.",
            "Also described adapting to the person's level and the measurable progress that followed.",
        ],
    ),
];

const MANAGER: [Spec; 8] = [
    (
        "technical_judgement",
        "Technical judgement",
        "technical",
        "Guiding technical decisions without owning every one.",
        [
            "Could not describe a technical decision their team made or why.",
            "Described decisions made by others; unclear on the trade-offs.",
            "Explained a significant technical decision, the alternatives, and how they helped the team reach it.",
            "Also described revisiting a decision when evidence changed and how they made that safe.",
        ],
    ),
    (
        "delivery_planning",
        "Delivery and planning",
        "technical",
        "Turning goals into plans that survive contact with reality.",
        [
            "Gave no example of planning work or handling a slipping plan.",
            "Described a plan; responded to slips by adding pressure or scope without trade-offs.",
            "Broke goals into milestones with risks, tracked them, and renegotiated scope when needed.",
            "Also showed how they made progress and risk visible to stakeholders early.",
        ],
    ),
    (
        "quality_operations",
        "Quality and operations",
        "technical",
        "Keeping systems reliable and the team learning from incidents.",
        [
            "Treated incidents as individual mistakes; no example of improving the system.",
            "Described handling an incident; follow-up stopped at the immediate fix.",
            "Described blameless reviews, follow-up actions and how quality was measured.",
            "Also described changing team practices so a class of incidents stopped recurring.",
        ],
    ),
    (
        "hiring_judgement",
        "Hiring judgement",
        "technical",
        "Building teams with structured, fair assessment.",
        [
            "Described hiring on gut feeling or culture fit.",
            "Used interviews; could not say what was assessed or how.",
            "Described structured interviews with defined competencies and evidence-based decisions.",
            "Also described checking their process for bias and calibrating interviewers.",
        ],
    ),
    (
        "feedback_coaching",
        "Feedback and coaching",
        "communication",
        "Helping people grow with specific, timely feedback.",
        [
            "Gave feedback about personality, or avoided giving it.",
            "Gave feedback at review time only; examples were vague.",
            "Described specific, behaviour-based feedback given promptly and followed up.",
            "Also described adapting coaching to the person and the growth that resulted.",
        ],
    ),
    (
        "stakeholder_communication",
        "Stakeholder communication",
        "communication",
        "Keeping partners informed and aligned.",
        [
            "Described surprises to stakeholders or communicating only when asked.",
            "Communicated status; translated poorly between engineering and business terms.",
            "Shared plans, risks and trade-offs proactively in terms each audience cared about.",
            "Also described aligning stakeholders with conflicting goals on a decision.",
        ],
    ),
    (
        "conflict_resolution",
        "Conflict resolution",
        "communication",
        "Turning disagreement into decisions the team commits to.",
        [
            "Avoided conflict or settled it by authority alone.",
            "Resolved conflicts case by case; the same tensions recurred.",
            "Surfaced disagreements early, heard each side and reached decisions with clear ownership.",
            "Also changed team norms or structure so recurring conflicts stopped.",
        ],
    ),
    (
        "adaptability",
        "Adaptability",
        "communication",
        "Leading the team through change.",
        [
            "Described resisting a change, or passing it on without context.",
            "Implemented changes; the team learned the reasons late.",
            "Explained the why of a change, adjusted plans and supported people through it.",
            "Also anticipated the change and prepared the team before it arrived.",
        ],
    ),
];

/// Every built-in template.
pub fn templates() -> Vec<Template> {
    vec![
        Template { id: "backend-engineer", rubric: build("Backend Engineer", &BACKEND) },
        Template { id: "engineering-manager", rubric: build("Engineering Manager", &MANAGER) },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate;

    #[test]
    fn templates_are_valid_rubrics_anchored_at_every_score() {
        for t in templates() {
            assert!(validate::rubric(&t.rubric, "rubric").is_empty(), "{} is valid", t.id);
            for c in &t.rubric.competencies {
                let scores: Vec<i32> = c.anchors.iter().map(|a| a.score).collect();
                assert_eq!(scores, [1, 2, 3, 4], "{}: {}", t.id, c.key);
            }
            for d in &t.rubric.dimensions {
                assert!(t.rubric.competencies.iter().any(|c| c.dimension_key == d.key));
            }
        }
        let backend = &templates()[0].rubric;
        assert_eq!(backend.competencies.len(), 10);
    }
}
