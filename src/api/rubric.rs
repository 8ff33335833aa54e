//! `RubricService`: rubrics and their immutable revisions.

use super::{PageRequest, State};
use crate::auth::Caller;
use crate::domain::names::Collection;
use crate::domain::templates::templates;
use crate::domain::{Role, RubricContent, new_id, now_micros, validate};
use crate::error::Error;
use crate::proto::{self, rubric_service_server::RubricService};

pub struct RubricApi {
    state: State,
}

impl RubricApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn create(&self, caller: Caller, req: proto::CreateRubricRequest) -> Result<proto::Rubric, Error> {
        caller.require_any(&[Role::Admin])?;
        let rubric = req.rubric.ok_or_else(|| Error::invalid("rubric", "is required"))?;
        let content = RubricContent::from(rubric);
        validate::rubric(&content, "rubric").into_result()?;
        let created = self.state.store.create_rubric(&caller.org, &new_id(), &content, now_micros()).await?;
        Ok((&created).into())
    }

    pub(crate) async fn get(&self, caller: Caller, req: proto::GetRubricRequest) -> Result<proto::Rubric, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let id = Collection::Rubrics.parse_required(&req.name, "name")?;
        if req.revision < 0 {
            return Err(Error::invalid("revision", "must not be negative"));
        }
        let rubric = self.state.store.get_rubric(&caller.org, id, i64::from(req.revision)).await?;
        let rubric = rubric.ok_or_else(|| match req.revision {
            0 => Error::NotFound(req.name.clone()),
            n => Error::NotFound(format!("revision {n} of {}", req.name)),
        })?;
        Ok(rubric.as_ref().into())
    }

    async fn list(&self, caller: Caller, req: proto::ListRubricsRequest) -> Result<proto::ListRubricsResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListRubrics"])?;
        let (rubrics, more) = self.state.store.list_rubrics(&caller.org, page.store_page()).await?;
        Ok(proto::ListRubricsResponse {
            next_page_token: page.next_token(more, rubrics.last().map(|r| r.id.clone())),
            rubrics: rubrics.iter().map(Into::into).collect(),
        })
    }

    async fn revise(&self, caller: Caller, req: proto::ReviseRubricRequest) -> Result<proto::Rubric, Error> {
        caller.require_any(&[Role::Admin])?;
        let rubric = req.rubric.ok_or_else(|| Error::invalid("rubric", "is required"))?;
        let mut violations = validate::rubric(&RubricContent::from(rubric.clone()), "rubric");
        let name = rubric.name.clone();
        let id = Collection::Rubrics.parse_field(&name, "rubric.name", &mut violations);
        if rubric.etag.is_empty() {
            violations.add("rubric.etag", "is required: send the etag of the revision you read");
        }
        violations.into_result()?;
        let id = id.unwrap_or_default();
        let current = self.state.store.get_rubric(&caller.org, id, 0).await?;
        let current = current.ok_or_else(|| Error::NotFound(rubric.name.clone()))?;
        if current.etag() != rubric.etag {
            return Err(Error::Aborted(format!(
                "{} has changed since you read it (now revision {}): read it again and retry",
                rubric.name, current.revision
            )));
        }
        let content = RubricContent::from(rubric);
        let revised = self.state.store.revise_rubric(&caller.org, id, current.revision, &content, now_micros()).await?;
        Ok((&revised).into())
    }

    async fn list_templates(
        &self,
        caller: Caller,
        _req: proto::ListRubricTemplatesRequest,
    ) -> Result<proto::ListRubricTemplatesResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        Ok(proto::ListRubricTemplatesResponse {
            templates: templates()
                .iter()
                .map(|t| proto::RubricTemplate { id: t.id.to_string(), rubric: Some((&t.rubric).into()) })
                .collect(),
        })
    }

    async fn create_from_template(
        &self,
        caller: Caller,
        req: proto::CreateRubricFromTemplateRequest,
    ) -> Result<proto::Rubric, Error> {
        caller.require_any(&[Role::Admin])?;
        if req.template.is_empty() {
            return Err(Error::invalid("template", "is required: an id from ListRubricTemplates"));
        }
        let template = templates().into_iter().find(|t| t.id == req.template);
        let template = template.ok_or_else(|| Error::NotFound(format!("rubric template `{}`", req.template)))?;
        let created = self.state.store.create_rubric(&caller.org, &new_id(), &template.rubric, now_micros()).await?;
        Ok((&created).into())
    }
}

#[tonic::async_trait]
impl RubricService for RubricApi {
    rpc!(create_rubric, create, proto::CreateRubricRequest, proto::Rubric);
    rpc!(get_rubric, get, proto::GetRubricRequest, proto::Rubric);
    rpc!(list_rubrics, list, proto::ListRubricsRequest, proto::ListRubricsResponse);
    rpc!(revise_rubric, revise, proto::ReviseRubricRequest, proto::Rubric);
    rpc!(list_rubric_templates, list_templates, proto::ListRubricTemplatesRequest, proto::ListRubricTemplatesResponse);
    rpc!(create_rubric_from_template, create_from_template, proto::CreateRubricFromTemplateRequest, proto::Rubric);
}
