"""The GraphQL resolvers over a LinearState: queries and mutations."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphql import (
    GraphQLResolveInfo,
)

from contexten.sandbox.linear.query import (
    _archived,
    _combine,
    _connection,
    _error,
    _match_date,
    _match_number,
    _match_string,
    _not_found,
    _ordered,
    _unsupported,
)
from contexten.sandbox.linear.state import (
    _UUID_RE,
    PRIORITY_LABELS,
    LinearComment,
    LinearIssue,
    LinearLabel,
    LinearState,
    LinearTeam,
    LinearUser,
    LinearWorkflowState,
    _iso,
    _slug,
)

# ----------------------------------------------------------------------------- resolvers


class _Resolvers:
    """Turns records into the dicts graphql-core's default resolver reads.

    Nested objects and connections are callables, so they are built only when selected.
    """

    def __init__(self, state: LinearState, base_url: str) -> None:
        self.s = state
        self.base_url = base_url

    # --- nodes ---
    def organization(self) -> dict[str, Any]:
        s = self.s
        return {
            "id": s.organization_id,
            "name": s.organization,
            "urlKey": s.url_key,
            "createdAt": _iso(s.viewer.created_at),
            "updatedAt": _iso(s.viewer.created_at),
            "userCount": len(s.users),
            "createdIssueCount": len(s.issues_by_id),
            "teams": lambda info, **args: self.teams(args),
            "labels": lambda info, **args: self.issue_labels(args),
        }

    def user(self, user: LinearUser) -> dict[str, Any]:
        initials = "".join(part[:1] for part in user.name.split()[:2]).upper()
        return {
            "id": user.id,
            "name": user.name,
            "displayName": user.name.split()[0].lower(),
            "email": user.email,
            "active": True,
            "admin": False,
            "app": True,
            "guest": False,
            "isMe": user.id == self.s.viewer.id,
            "owner": False,
            "initials": initials,
            "avatarBackgroundColor": "#5e6ad2",
            "createdAt": _iso(user.created_at),
            "updatedAt": _iso(user.created_at),
            "url": f"{self.s.web_url}/{self.s.url_key}/profiles/{user.id}",
            "organization": lambda info: self.organization(),
        }

    def team(self, team: LinearTeam) -> dict[str, Any]:
        return {
            "id": team.id,
            "key": team.key,
            "name": team.name,
            "displayName": team.name,
            "private": False,
            "timezone": "Etc/UTC",
            "createdAt": _iso(team.created_at),
            "updatedAt": _iso(team.created_at),
            "issueCount": sum(1 for i in self.s.issues_by_id.values() if i.team_id == team.id),
            "triageEnabled": False,
            "cyclesEnabled": False,
            "organization": lambda info: self.organization(),
            "states": lambda info, **args: self.workflow_states(args, team_id=team.id),
            "labels": lambda info, **args: self.issue_labels(args, team_id=team.id),
            "issues": lambda info, **args: self.issues(args, team_id=team.id),
        }

    def workflow_state(self, state: LinearWorkflowState) -> dict[str, Any]:
        return {
            "id": state.id,
            "name": state.name,
            "type": state.type,
            "position": state.position,
            "color": state.color,
            "description": None,
            "createdAt": _iso(state.created_at),
            "updatedAt": _iso(state.created_at),
            "archivedAt": None,
            "team": lambda info: self.team(self.s.teams[state.team_id]),
            "issues": lambda info, **args: self.issues(args, state_id=state.id),
        }

    def label(self, label: LinearLabel) -> dict[str, Any]:
        team = self.s.teams.get(label.team_id or "")
        return {
            "id": label.id,
            "name": label.name,
            "color": label.color,
            "description": label.description,
            "isGroup": False,
            "createdAt": _iso(label.created_at),
            "updatedAt": _iso(label.created_at),
            "archivedAt": None,
            "team": (lambda info: self.team(team)) if team else None,
            "organization": lambda info: self.organization(),
            "issues": lambda info, **args: self.issues(args, label_id=label.id),
        }

    def issue(self, issue: LinearIssue) -> dict[str, Any]:
        s = self.s
        team = s.teams[issue.team_id]
        url = f"{s.web_url}/{s.url_key}/issue/{issue.identifier}/{_slug(issue.title)}"
        return {
            "id": issue.id,
            "identifier": issue.identifier,
            "number": float(issue.number),
            "title": issue.title,
            "description": issue.description,
            "priority": float(issue.priority),
            "priorityLabel": PRIORITY_LABELS.get(issue.priority, "No priority"),
            "url": url,
            "branchName": f"{s.viewer.name.split()[0].lower()}/{issue.identifier.lower()}-"
            f"{_slug(issue.title)}"[:100],
            "createdAt": _iso(issue.created_at),
            "updatedAt": _iso(issue.updated_at),
            "startedAt": _iso(issue.started_at) if issue.started_at else None,
            "completedAt": _iso(issue.completed_at) if issue.completed_at else None,
            "canceledAt": _iso(issue.canceled_at) if issue.canceled_at else None,
            "archivedAt": _iso(issue.archived_at) if issue.archived_at else None,
            "dueDate": issue.due_date,
            "labelIds": list(issue.label_ids),
            "previousIdentifiers": [],
            "boardOrder": 0.0,
            "sortOrder": float(-issue.number),
            "prioritySortOrder": float(issue.priority),
            "customerTicketCount": 0,
            "inheritsSharedAccess": False,
            "reactionData": {},
            "reactions": [],
            "trashed": None,
            "state": lambda info: self.workflow_state(s.workflow_states[issue.state_id]),
            "team": lambda info: self.team(team),
            "creator": (lambda info: self.user(s.users[issue.creator_id]))
            if issue.creator_id in s.users
            else None,
            "assignee": (lambda info: self.user(s.users[issue.assignee_id]))
            if issue.assignee_id in s.users
            else None,
            "parent": (lambda info: self.issue(s.issues_by_id[issue.parent_id]))
            if issue.parent_id in s.issues_by_id
            else None,
            "labels": lambda info, **args: self.issue_labels(args, ids=issue.label_ids),
            "comments": lambda info, **args: self.comments(args, issue_id=issue.id),
        }

    def comment(self, comment: LinearComment) -> dict[str, Any]:
        s = self.s
        issue = s.issues_by_id[comment.issue_id]
        body_data = {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": comment.body}]}],
        }
        return {
            "id": comment.id,
            "body": comment.body,
            "bodyData": json.dumps(body_data),
            "url": self.issue(issue)["url"] + f"#comment-{comment.id[:8]}",
            "createdAt": _iso(comment.created_at),
            "updatedAt": _iso(comment.updated_at),
            "editedAt": None,
            "archivedAt": None,
            "hideInLinear": False,
            "isArtificialAgentSessionRoot": False,
            "reactionData": {},
            "reactions": [],
            "issueId": issue.id,
            "issue": lambda info: self.issue(issue),
            "user": (lambda info: self.user(s.users[comment.user_id]))
            if comment.user_id in s.users
            else None,
        }

    # --- filters ---
    def match_team(self, team: LinearTeam | None, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        if spec.get("null") is not None and (team is None) != bool(spec["null"]):
            return False
        if team is None:
            return not any(v is not None for k, v in spec.items() if k != "null")
        _unsupported("TeamFilter", spec, {"id", "key", "name", "and", "or", "null"})
        return (
            _match_string(team.id, spec.get("id") or {})
            and _match_string(team.key, spec.get("key") or {})
            and _match_string(team.name, spec.get("name") or {})
            and _combine(team, spec, self.match_team)
        )

    def match_state(self, state: LinearWorkflowState, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        _unsupported(
            "WorkflowStateFilter", spec, {"id", "name", "type", "position", "team", "and", "or"}
        )
        return (
            _match_string(state.id, spec.get("id") or {})
            and _match_string(state.name, spec.get("name") or {})
            and _match_string(state.type, spec.get("type") or {})
            and _match_number(state.position, spec.get("position") or {})
            and self.match_team(self.s.teams.get(state.team_id), spec.get("team"))
            and _combine(state, spec, self.match_state)
        )

    def match_label(self, label: LinearLabel, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        _unsupported("IssueLabelFilter", spec, {"id", "name", "team", "and", "or"})
        return (
            _match_string(label.id, spec.get("id") or {})
            and _match_string(label.name, spec.get("name") or {})
            and self.match_team(self.s.teams.get(label.team_id or ""), spec.get("team"))
            and _combine(label, spec, self.match_label)
        )

    def match_label_collection(self, label_ids: list[str], spec: Mapping[str, Any]) -> bool:
        _unsupported(
            "IssueLabelCollectionFilter",
            spec,
            {"some", "every", "id", "name", "length", "null", "and", "or"},
        )
        labels = [self.s.labels[i] for i in label_ids if i in self.s.labels]
        if spec.get("null") is not None and (not labels) != bool(spec["null"]):
            return False
        if spec.get("some") is not None and not any(
            self.match_label(la, spec["some"]) for la in labels
        ):
            return False
        if spec.get("every") is not None and not all(
            self.match_label(la, spec["every"]) for la in labels
        ):
            return False
        for key in ("id", "name"):
            if spec.get(key) is not None and not any(
                self.match_label(la, {key: spec[key]}) for la in labels
            ):
                return False
        if spec.get("length") is not None and not _match_number(len(labels), spec["length"]):
            return False
        return _combine(label_ids, spec, lambda ids, sub: self.match_label_collection(ids, sub))

    def match_issue(self, issue: LinearIssue, spec: Mapping[str, Any] | None) -> bool:
        if not spec:
            return True
        _unsupported(
            "IssueFilter",
            spec,
            {
                "id", "title", "description", "priority", "number", "team", "state",
                "labels", "createdAt", "updatedAt", "completedAt", "canceledAt",
                "archivedAt", "and", "or",
            },
        )  # fmt: skip
        s = self.s
        return (
            _match_string(issue.id, spec.get("id") or {})
            and _match_string(issue.title, spec.get("title") or {})
            and _match_string(issue.description, spec.get("description") or {})
            and _match_number(issue.priority, spec.get("priority") or {})
            and _match_number(issue.number, spec.get("number") or {})
            and _match_date(issue.created_at, spec.get("createdAt") or {})
            and _match_date(issue.updated_at, spec.get("updatedAt") or {})
            and _match_date(issue.completed_at, spec.get("completedAt") or {})
            and _match_date(issue.canceled_at, spec.get("canceledAt") or {})
            and _match_date(issue.archived_at, spec.get("archivedAt") or {})
            and self.match_team(s.teams.get(issue.team_id), spec.get("team"))
            and self.match_state(s.workflow_states[issue.state_id], spec.get("state"))
            and (
                spec.get("labels") is None
                or self.match_label_collection(issue.label_ids, spec["labels"])
            )
            and _combine(issue, spec, self.match_issue)
        )

    # --- connections ---
    def issues(
        self,
        args: Mapping[str, Any],
        *,
        team_id: str | None = None,
        state_id: str | None = None,
        label_id: str | None = None,
    ) -> dict[str, Any]:
        candidates = [
            i
            for i in self.s.issues_by_id.values()
            if (team_id is None or i.team_id == team_id)
            and (state_id is None or i.state_id == state_id)
            and (label_id is None or label_id in i.label_ids)
            and not _archived(i, args)
        ]
        matching = [i for i in candidates if self.match_issue(i, args.get("filter"))]
        return _connection(_ordered(matching, args), args, self.issue, lambda i: i.id)

    def issue_labels(
        self,
        args: Mapping[str, Any],
        *,
        team_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        labels = [
            la
            for la in self.s.labels.values()
            if (team_id is None or la.team_id in (None, team_id))
            and (ids is None or la.id in ids)
            and self.match_label(la, args.get("filter"))
        ]
        return _connection(_ordered(labels, args), args, self.label, lambda la: la.id)

    def workflow_states(self, args: Mapping[str, Any], *, team_id: str | None = None) -> Any:
        states = sorted(
            (
                st
                for st in self.s.workflow_states.values()
                if (team_id is None or st.team_id == team_id)
                and self.match_state(st, args.get("filter"))
            ),
            key=lambda st: (st.team_id, st.position),
        )
        return _connection(states, args, self.workflow_state, lambda st: st.id)

    def teams(self, args: Mapping[str, Any]) -> dict[str, Any]:
        teams = [t for t in self.s.teams.values() if self.match_team(t, args.get("filter"))]
        return _connection(_ordered(teams, args), args, self.team, lambda t: t.id)

    def comments(self, args: Mapping[str, Any], *, issue_id: str | None = None) -> Any:
        if args.get("filter"):
            raise _error("CommentFilter is not supported by the contexten sandbox")
        items = [
            c for c in self.s.comments_by_id.values() if issue_id is None or c.issue_id == issue_id
        ]
        return _connection(_ordered(items, args), args, self.comment, lambda c: c.id)

    # --- root fields ---
    def root(self) -> dict[str, Any]:
        s = self.s
        return {
            "issues": lambda info, **args: self.issues(args),
            "issue": lambda info, id: self.issue(self._issue(id)),
            "issueLabels": lambda info, **args: self.issue_labels(args),
            "workflowStates": lambda info, **args: self.workflow_states(args),
            "workflowState": lambda info, id: self.workflow_state(
                s.workflow_states.get(id) or _raise(_not_found("WorkflowState"))
            ),
            "team": lambda info, id: self.team(self._team(id)),
            "teams": lambda info, **args: self.teams(args),
            "viewer": lambda info: self.user(s.viewer),
            "organization": lambda info: self.organization(),
            "rateLimitStatus": lambda info: s._rate_status(),
            "comments": lambda info, **args: self.comments(args),
            "comment": lambda info, id=None, **_: self.comment(
                s.comments_by_id.get(id or "") or _raise(_not_found("Comment"))
            ),
            "issueCreate": lambda info, input: self.issue_create(input),
            "issueUpdate": lambda info, id, input: self.issue_update(id, input),
            "commentCreate": lambda info, input: self.comment_create(input),
            "issueLabelCreate": lambda info, input, **_: self.label_create(input),
        }

    def _issue(self, ref: str) -> LinearIssue:
        issue = self.s._find_issue(ref)
        if issue is None:
            raise _not_found("Issue")
        return issue

    def _team(self, ref: str) -> LinearTeam:
        team = self.s.teams.get(ref)
        if team is None:
            team = next((t for t in self.s.teams.values() if t.key == ref.upper()), None)
        if team is None:
            raise _not_found("Team")
        return team

    def _client_id(self, value: str | None, existing: Mapping[str, Any]) -> str | None:
        if value is None:
            return None
        if not _UUID_RE.match(value):
            raise _error("Argument Validation Error", user_message="id must be a UUID.")
        if value in existing:
            raise _error(
                f"Entity with id {value} already exists",
                code="CONFLICT",
                user_message="An entity with this id already exists.",
            )
        return value

    def _check_priority(self, priority: Any) -> int:
        if priority is None:
            return 0
        if priority not in PRIORITY_LABELS:
            raise _error(
                "Argument Validation Error", user_message="priority must be between 0 and 4."
            )
        return int(priority)

    def _check_labels(self, label_ids: Iterable[str], team_id: str) -> list[str]:
        result: list[str] = []
        for label_id in label_ids:
            label = self.s.labels.get(label_id)
            if label is None or label.team_id not in (None, team_id):
                raise _not_found("IssueLabel")
            if label_id not in result:
                result.append(label_id)
        return result

    def _check_state(self, state_id: str, team_id: str) -> str:
        state = self.s.workflow_states.get(state_id)
        if state is None or state.team_id != team_id:
            raise _not_found("WorkflowState")
        return state_id

    def issue_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "IssueCreateInput",
            data,
            {
                "id", "teamId", "title", "description", "priority", "labelIds", "stateId",
                "assigneeId", "parentId", "dueDate",
            },
        )  # fmt: skip
        s = self.s
        team = self._team(data["teamId"])
        title = (data.get("title") or "").strip()
        if not title:
            raise _error("Argument Validation Error", user_message="Title is required.")
        if len(title) > 255:
            raise _error("Argument Validation Error", user_message="Title is too long.")
        issue_id = self._client_id(data.get("id"), s.issues_by_id)
        state_id = (
            self._check_state(data["stateId"], team.id)
            if data.get("stateId")
            else s.state_of_type(team.id, "backlog").id
        )
        assignee = data.get("assigneeId")
        if assignee is not None and assignee not in s.users:
            raise _not_found("User")
        parent = data.get("parentId")
        if parent is not None:
            parent = self._issue(parent).id
        issue = s._new_issue(
            team_id=team.id,
            title=title,
            description=data.get("description"),
            priority=self._check_priority(data.get("priority")),
            state_id=state_id,
            label_ids=self._check_labels(data.get("labelIds") or (), team.id),
            issue_id=issue_id,
            assignee_id=assignee,
            parent_id=parent,
            due_date=data.get("dueDate"),
        )
        return {"success": True, "lastSyncId": s._next_sync_id(), "issue": self.issue(issue)}

    def issue_update(self, ref: str, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "IssueUpdateInput",
            data,
            {
                "title", "description", "priority", "stateId", "labelIds", "addedLabelIds",
                "removedLabelIds", "assigneeId", "dueDate",
            },
        )  # fmt: skip
        s = self.s
        issue = self._issue(ref)
        now = s.clock()
        if data.get("title") is not None:
            title = data["title"].strip()
            if not title:
                raise _error("Argument Validation Error", user_message="Title is required.")
            issue.title = title
        if "description" in data:
            issue.description = data["description"]
        if data.get("priority") is not None:
            issue.priority = self._check_priority(data["priority"])
        if data.get("stateId") is not None:
            issue.state_id = self._check_state(data["stateId"], issue.team_id)
            s._apply_state_times(issue, s.workflow_states[issue.state_id].type, now)
        if data.get("labelIds") is not None:
            issue.label_ids = self._check_labels(data["labelIds"], issue.team_id)
        if data.get("addedLabelIds"):
            added = self._check_labels(data["addedLabelIds"], issue.team_id)
            issue.label_ids += [i for i in added if i not in issue.label_ids]
        if data.get("removedLabelIds"):
            issue.label_ids = [i for i in issue.label_ids if i not in data["removedLabelIds"]]
        if "assigneeId" in data:
            if data["assigneeId"] is not None and data["assigneeId"] not in s.users:
                raise _not_found("User")
            issue.assignee_id = data["assigneeId"]
        if "dueDate" in data:
            issue.due_date = data["dueDate"]
        issue.updated_at = now
        return {"success": True, "lastSyncId": s._next_sync_id(), "issue": self.issue(issue)}

    def comment_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "CommentCreateInput",
            data,
            {"id", "issueId", "body", "parentId", "doNotSubscribeToIssue", "createAsUser"},
        )
        s = self.s
        if not data.get("issueId"):
            raise _error("Argument Validation Error", user_message="issueId is required.")
        issue = self._issue(data["issueId"])
        body = data.get("body") or ""
        if not body.strip():
            raise _error("Argument Validation Error", user_message="Comment body is empty.")
        if data.get("parentId") is not None and data["parentId"] not in s.comments_by_id:
            raise _not_found("Comment")
        comment_id = self._client_id(data.get("id"), s.comments_by_id) or str(uuid.uuid4())
        now = s.clock()
        comment = LinearComment(comment_id, issue.id, body, s.viewer.id, now, now)
        s.comments_by_id[comment.id] = comment
        issue.updated_at = now
        return {"success": True, "lastSyncId": s._next_sync_id(), "comment": self.comment(comment)}

    def label_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _unsupported(
            "IssueLabelCreateInput", data, {"id", "name", "teamId", "color", "description"}
        )
        s = self.s
        team_id = self._team(data["teamId"]).id if data.get("teamId") else None
        name = data["name"].strip()
        if not name:
            raise _error("Argument Validation Error", user_message="Label name is required.")
        for label in s.labels.values():
            if label.name.casefold() == name.casefold() and label.team_id in (None, team_id):
                raise _error("Duplicate label name", user_message=f"Label {name} already exists.")
        label_id = self._client_id(data.get("id"), s.labels) or str(uuid.uuid4())
        label = LinearLabel(
            label_id,
            name,
            team_id,
            data.get("color") or "#eb5757",
            s.clock(),
            data.get("description"),
        )
        s.labels[label.id] = label
        return {"success": True, "lastSyncId": s._next_sync_id(), "issueLabel": self.label(label)}


def _raise(error: Exception) -> Any:
    raise error


class _RootValue(dict[str, Any]):
    """The root object: unimplemented fields answer a clear error instead of a null."""

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return super().get(key)

        def unsupported(info: GraphQLResolveInfo, **_: Any) -> Any:
            raise _error(
                f"{info.parent_type.name}.{key} is not implemented by the contexten sandbox",
                type_="graphql error",
                code="NOT_IMPLEMENTED",
            )

        return unsupported
