"""App-server v2 protocol payloads that facts embed, typed as the app-server writes them.

Only the fields the reducer reads are declared; msgspec ignores the rest, so a newer app-server
that adds fields still decodes. Every field is bounded (:mod:`schemas.bounds`): integers are
:data:`~schemas.bounds.Int64`, strings have a maximum length, and the few free-form (``Any``) fields are
checked by their struct's ``__post_init__``. Field names are camelCase on the wire (``rename="camel"``) unless a
comment says the Rust core type serialises snake_case (those structs carry no ``rename``).

Tagged unions follow the protocol's own tags: requests, responses and notifications are tagged by
``"method"``, thread items and guardian actions by ``"type"``. A method or item type that is not
declared here is a decode error (the fact is dead-lettered with the path of the bad field).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from schemas.bounds import Id, IdList, Int64, Name, Path, Text, check_free_form

RequestId = Id | Int64
"""JSON-RPC request id: a JSON string or integer. ``"41"`` and ``41`` are different ids."""


class _Camel(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    """Base of protocol structs whose wire names are camelCase."""


# --- initialize -----------------------------------------------------------------------------------


class ClientInfo(_Camel):
    name: Name
    version: Name
    title: Name | None = None


class InitializeCapabilities(_Camel):
    experimental_api: bool = False
    request_attestation: bool = False
    opt_out_notification_methods: list[Name] | None = None


class InitializeParams(_Camel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities | None = None


class RuntimeMetadata(msgspec.Struct, kw_only=True, gc=False):
    """Process runtime of the app-server (snake_case, as the analytics crate writes it)."""

    codex_rs_version: Name
    runtime_os: Name
    runtime_os_version: Name
    runtime_arch: Name


RpcTransport = Literal["stdio", "websocket", "in_process"]

# --- threads and turns ----------------------------------------------------------------------------


class ThreadSpawn(msgspec.Struct, kw_only=True, gc=False):
    """``SubAgentSource::ThreadSpawn`` (core type, snake_case)."""

    parent_thread_id: Id
    depth: Int64 = 0
    agent_path: Path | None = None
    agent_nickname: Name | None = None
    agent_role: Name | None = None


class SubAgentSourceObject(msgspec.Struct, kw_only=True, gc=False):
    """The object forms of ``SubAgentSource``: ``{"thread_spawn": {...}}`` or ``{"other": "name"}``."""

    thread_spawn: ThreadSpawn | None = None
    other: Name | None = None


SubAgentSource = Name | SubAgentSourceObject
"""``"review"``, ``"compact"``, ``"memory_consolidation"``, or one of the object forms."""


class SessionSourceObject(_Camel):
    """The object forms of ``SessionSource``: ``{"custom": str}`` or ``{"subAgent": SubAgentSource}``."""

    custom: Name | None = None
    sub_agent: SubAgentSource | None = None


SessionSource = Name | SessionSourceObject
"""``"cli"``, ``"vscode"``, ``"exec"``, ``"appServer"``, ``"unknown"`` (any other string), or an object."""


class Thread(_Camel):
    id: Id
    session_id: Id | None = None
    ephemeral: bool = False
    created_at: Int64 = 0
    source: SessionSource = "unknown"
    thread_source: Name | None = None
    parent_thread_id: Id | None = None
    forked_from_id: Id | None = None


class CodexErrorInfo(_Camel):
    """``turn.error``; ``codexErrorInfo`` is kept as raw JSON (its own enum is reduced elsewhere).

    The reducer stores ``codexErrorInfo`` and copies it into the turn row verbatim, so it stays ``Any``
    (the row bytes are the producer's JSON re-encoded) and is bounded by :func:`check_free_form`.
    """

    message: Text | None = None
    codex_error_info: Any = None

    def __post_init__(self) -> None:
        check_free_form(self.codex_error_info, "codexErrorInfo")


TurnStatus = Literal["completed", "interrupted", "failed", "inProgress"]


class Turn(_Camel):
    id: Id
    status: TurnStatus = "inProgress"
    error: CodexErrorInfo | None = None
    started_at: Int64 | None = None
    completed_at: Int64 | None = None
    duration_ms: Int64 | None = None


class UserInput(msgspec.Struct, gc=False):
    """One input item; only its ``type`` matters (``image`` and ``localImage`` count as images)."""

    type: Name


# --- client requests and responses ----------------------------------------------------------------


class TurnStartParams(_Camel):
    thread_id: Id
    input: list[UserInput] = []


class TurnSteerParams(_Camel):
    thread_id: Id
    expected_turn_id: Id
    input: list[UserInput] = []


class _ClientRequest(msgspec.Struct, kw_only=True, tag_field="method", gc=False):
    id: RequestId


class TurnStartRequest(_ClientRequest, tag="turn/start"):
    params: TurnStartParams


class TurnSteerRequest(_ClientRequest, tag="turn/steer"):
    params: TurnSteerParams


class ThreadArchiveRequest(_ClientRequest, tag="thread/archive"):
    """Not analytics-relevant; declared so the reducer can show it ignores it."""


ClientRequest = TurnStartRequest | TurnSteerRequest | ThreadArchiveRequest


class ThreadResponse(_Camel):
    thread: Thread
    model: Name = ""


class TurnStartResponse(_Camel):
    turn: Turn


class TurnSteerResponse(_Camel):
    turn_id: Id


class _ClientResponse(msgspec.Struct, kw_only=True, tag_field="method", gc=False):
    id: RequestId


class ThreadStartResult(_ClientResponse, tag="thread/start"):
    response: ThreadResponse


class ThreadResumeResult(_ClientResponse, tag="thread/resume"):
    response: ThreadResponse


class ThreadForkResult(_ClientResponse, tag="thread/fork"):
    response: ThreadResponse


class TurnStartResult(_ClientResponse, tag="turn/start"):
    response: TurnStartResponse


class TurnSteerResult(_ClientResponse, tag="turn/steer"):
    response: TurnSteerResponse


class ThreadArchiveResult(_ClientResponse, tag="thread/archive"):
    """Not analytics-relevant; declared so the reducer can show it ignores it."""


ClientResponse = (
    ThreadStartResult
    | ThreadResumeResult
    | ThreadForkResult
    | TurnStartResult
    | TurnSteerResult
    | ThreadArchiveResult
)


class JsonRpcError(msgspec.Struct, kw_only=True, gc=False):
    """The error of a failed client request. Its free-form ``data`` is not declared: no reducer reads it."""

    code: Int64
    message: Text


# --- approval requests (server -> client) ---------------------------------------------------------


class NetworkApprovalContext(_Camel):
    host: Name
    protocol: Name | None = None


class NetworkPermission(_Camel):
    enabled: bool | None = None


class PermissionProfile(_Camel):
    """``additionalPermissions`` / ``permissions`` of approval requests (camelCase on the wire).

    The reducer only tests ``fileSystem`` for presence; it stays ``Any`` (null is absent), bounded.
    """

    network: NetworkPermission | None = None
    file_system: Any = None

    def __post_init__(self) -> None:
        check_free_form(self.file_system, "fileSystem")


class NetworkPolicyAmendment(msgspec.Struct, kw_only=True, gc=False):
    host: Name
    action: Literal["allow", "deny"]


class CommandExecutionApprovalParams(_Camel):
    thread_id: Id
    turn_id: Id
    item_id: Id
    started_at_ms: Int64
    approval_id: Id | None = None
    network_approval_context: NetworkApprovalContext | None = None
    additional_permissions: PermissionProfile | None = None
    proposed_network_policy_amendments: list[NetworkPolicyAmendment] | None = None
    # Carried by the PR so analytics *could* tell shell from unified_exec; no reducer version reads it
    # and no output field holds it (docs/differences.md).
    source: Name | None = None


class FileChangeApprovalParams(_Camel):
    thread_id: Id
    turn_id: Id
    item_id: Id
    started_at_ms: Int64
    grant_root: Path | None = None


class PermissionsApprovalParams(_Camel):
    thread_id: Id
    turn_id: Id
    item_id: Id
    started_at_ms: Int64
    permissions: PermissionProfile = msgspec.field(default_factory=PermissionProfile)


class _ServerRequest(msgspec.Struct, kw_only=True, tag_field="method", gc=False):
    id: RequestId


class CommandExecutionApprovalRequest(_ServerRequest, tag="item/commandExecution/requestApproval"):
    params: CommandExecutionApprovalParams


class FileChangeApprovalRequest(_ServerRequest, tag="item/fileChange/requestApproval"):
    params: FileChangeApprovalParams


class PermissionsApprovalRequest(_ServerRequest, tag="item/permissions/requestApproval"):
    params: PermissionsApprovalParams


class ToolRequestUserInputRequest(_ServerRequest, tag="item/tool/requestUserInput"):
    """Ignored by the reducer."""


class ToolCallRequest(_ServerRequest, tag="item/tool/call"):
    """Ignored by the reducer."""


class McpElicitationRequest(_ServerRequest, tag="mcpServer/elicitation/request"):
    """Ignored by the reducer."""


class AuthTokensRefreshRequest(_ServerRequest, tag="account/chatgptAuthTokens/refresh"):
    """Ignored by the reducer."""


class LegacyApplyPatchApprovalRequest(_ServerRequest, tag="applyPatchApproval"):
    """v1 approval; ignored by the reducer."""


class LegacyExecCommandApprovalRequest(_ServerRequest, tag="execCommandApproval"):
    """v1 approval; ignored by the reducer."""


ServerRequest = (
    CommandExecutionApprovalRequest
    | FileChangeApprovalRequest
    | PermissionsApprovalRequest
    | ToolRequestUserInputRequest
    | ToolCallRequest
    | McpElicitationRequest
    | AuthTokensRefreshRequest
    | LegacyApplyPatchApprovalRequest
    | LegacyExecCommandApprovalRequest
)

# --- approval responses (client -> server) --------------------------------------------------------


class ExecpolicyAmendment(msgspec.Struct, kw_only=True, gc=False):
    execpolicy_amendment: list[Text] = []


class NetworkPolicyAmendmentDecision(msgspec.Struct, kw_only=True, gc=False):
    network_policy_amendment: NetworkPolicyAmendment


class CommandDecisionObject(_Camel):
    """Object forms of ``CommandExecutionApprovalDecision`` (inner field names are snake_case)."""

    accept_with_execpolicy_amendment: ExecpolicyAmendment | None = None
    apply_network_policy_amendment: NetworkPolicyAmendmentDecision | None = None

    def __post_init__(self) -> None:
        if (self.accept_with_execpolicy_amendment is None) == (self.apply_network_policy_amendment is None):
            raise ValueError("a decision object names exactly one of the two variants")


CommandDecision = Literal["accept", "acceptForSession", "decline", "cancel"] | CommandDecisionObject
FileChangeDecision = Literal["accept", "acceptForSession", "decline", "cancel"]


class CommandExecutionApprovalResponse(msgspec.Struct, kw_only=True, gc=False):
    decision: CommandDecision


class FileChangeApprovalResponse(msgspec.Struct, kw_only=True, gc=False):
    decision: FileChangeDecision


class _ServerResponse(msgspec.Struct, kw_only=True, tag_field="method", gc=False):
    id: RequestId


class CommandExecutionApprovalResult(_ServerResponse, tag="item/commandExecution/requestApproval"):
    response: CommandExecutionApprovalResponse


class FileChangeApprovalResult(_ServerResponse, tag="item/fileChange/requestApproval"):
    response: FileChangeApprovalResponse


class PermissionsApprovalResult(_ServerResponse, tag="item/permissions/requestApproval"):
    """Never recorded by the app-server; ignored by the reducer if it arrives anyway."""


class ToolRequestUserInputResult(_ServerResponse, tag="item/tool/requestUserInput"):
    """Ignored by the reducer."""


class ToolCallResult(_ServerResponse, tag="item/tool/call"):
    """Ignored by the reducer."""


class McpElicitationResult(_ServerResponse, tag="mcpServer/elicitation/request"):
    """Ignored by the reducer."""


ServerResponse = (
    CommandExecutionApprovalResult
    | FileChangeApprovalResult
    | PermissionsApprovalResult
    | ToolRequestUserInputResult
    | ToolCallResult
    | McpElicitationResult
)


class EffectiveNetwork(msgspec.Struct, kw_only=True, gc=False):
    enabled: bool | None = None


class EffectivePermissions(msgspec.Struct, kw_only=True, gc=False):
    """Core ``PermissionProfile`` (snake_case). Empty iff both members are null.

    The reducer only tests ``file_system`` for presence; it stays ``Any`` (null is absent), bounded.
    """

    network: EffectiveNetwork | None = None
    file_system: Any = None

    def __post_init__(self) -> None:
        check_free_form(self.file_system, "file_system")


class RequestPermissionsResponse(msgspec.Struct, kw_only=True, gc=False):
    """Core ``RequestPermissionsResponse`` (snake_case)."""

    permissions: EffectivePermissions = msgspec.field(default_factory=EffectivePermissions)
    scope: Literal["turn", "session"] = "turn"
    strict_auto_review: bool | None = None


# --- thread items ---------------------------------------------------------------------------------


class CommandAction(msgspec.Struct, gc=False):
    type: Name


class CommandExecutionItem(_Camel, tag_field="type", tag="commandExecution"):
    id: Id
    status: Literal["inProgress", "completed", "failed", "declined"] = "inProgress"
    source: Literal["agent", "userShell", "unifiedExecStartup", "unifiedExecInteraction"] = "agent"
    command_actions: list[CommandAction] = []
    exit_code: Int64 | None = None
    duration_ms: Int64 | None = None


class PatchChangeKind(msgspec.Struct, kw_only=True, gc=False):
    """``{"type": "add"|"delete"|"update", "move_path": ...}`` (``move_path`` is snake_case)."""

    type: Literal["add", "delete", "update"]
    move_path: Path | None = None


class FileUpdateChange(msgspec.Struct, kw_only=True, gc=False):
    path: Path = ""
    kind: PatchChangeKind


class FileChangeItem(_Camel, tag_field="type", tag="fileChange"):
    id: Id
    status: Literal["inProgress", "completed", "failed", "declined"] = "inProgress"
    changes: list[FileUpdateChange] = []


class McpToolCallItem(_Camel, tag_field="type", tag="mcpToolCall"):
    """The reducer only tests ``error`` for presence; it stays ``Any`` (null is absent), bounded."""

    id: Id
    server: Name
    tool: Name
    status: Literal["inProgress", "completed", "failed"] = "inProgress"
    error: Any = None
    duration_ms: Int64 | None = None

    def __post_init__(self) -> None:
        check_free_form(self.error, "error")


class DynamicContentItem(msgspec.Struct, gc=False):
    type: Name


class DynamicToolCallItem(_Camel, tag_field="type", tag="dynamicToolCall"):
    id: Id
    tool: Name
    status: Literal["inProgress", "completed", "failed"] = "inProgress"
    content_items: list[DynamicContentItem] | None = None
    success: bool | None = None
    duration_ms: Int64 | None = None


class AgentState(_Camel):
    status: Literal["pendingInit", "running", "interrupted", "completed", "errored", "shutdown", "notFound"]
    message: Text | None = None


class CollabAgentToolCallItem(_Camel, tag_field="type", tag="collabAgentToolCall"):
    id: Id
    tool: Literal["spawnAgent", "sendInput", "resumeAgent", "wait", "closeAgent"]
    status: Literal["inProgress", "completed", "failed"] = "inProgress"
    sender_thread_id: Id = ""
    receiver_thread_ids: IdList = []
    model: Name | None = None
    reasoning_effort: Name | None = None
    agents_states: dict[Id, AgentState] = {}


class WebSearchAction(msgspec.Struct, kw_only=True, gc=False):
    """``search{query, queries}``, ``openPage{url}``, ``findInPage{url, pattern}`` or anything else."""

    type: Name
    query: Text | None = None
    queries: list[Text] | None = None


class WebSearchItem(_Camel, tag_field="type", tag="webSearch"):
    id: Id
    query: Text = ""
    action: WebSearchAction | None = None


class ImageGenerationItem(_Camel, tag_field="type", tag="imageGeneration"):
    id: Id
    status: Name = ""
    revised_prompt: Text | None = None
    saved_path: Path | None = None


class _OtherItem(_Camel, tag_field="type"):
    id: Id


class UserMessageItem(_OtherItem, tag="userMessage"):
    pass


class HookPromptItem(_OtherItem, tag="hookPrompt"):
    pass


class AgentMessageItem(_OtherItem, tag="agentMessage"):
    pass


class PlanItem(_OtherItem, tag="plan"):
    pass


class ReasoningItem(_OtherItem, tag="reasoning"):
    pass


class ImageViewItem(_OtherItem, tag="imageView"):
    pass


class EnteredReviewModeItem(_OtherItem, tag="enteredReviewMode"):
    pass


class ExitedReviewModeItem(_OtherItem, tag="exitedReviewMode"):
    pass


class ContextCompactionItem(_OtherItem, tag="contextCompaction"):
    pass


class SubAgentActivityItem(_OtherItem, tag="subAgentActivity"):
    pass


class SleepItem(_OtherItem, tag="sleep"):
    pass


ToolItem = (
    CommandExecutionItem
    | FileChangeItem
    | McpToolCallItem
    | DynamicToolCallItem
    | CollabAgentToolCallItem
    | WebSearchItem
    | ImageGenerationItem
)

ThreadItem = (
    CommandExecutionItem
    | FileChangeItem
    | McpToolCallItem
    | DynamicToolCallItem
    | CollabAgentToolCallItem
    | WebSearchItem
    | ImageGenerationItem
    | UserMessageItem
    | HookPromptItem
    | AgentMessageItem
    | PlanItem
    | ReasoningItem
    | ImageViewItem
    | EnteredReviewModeItem
    | ExitedReviewModeItem
    | ContextCompactionItem
    | SubAgentActivityItem
    | SleepItem
)

# --- guardian review notifications ----------------------------------------------------------------


class _GuardianAction(_Camel, tag_field="type"):
    pass


class GuardianCommandAction(_GuardianAction, tag="command"):
    source: Name | None = None


class GuardianExecveAction(_GuardianAction, tag="execve"):
    source: Name | None = None


class GuardianApplyPatchAction(_GuardianAction, tag="applyPatch"):
    pass


class GuardianNetworkAccessAction(_GuardianAction, tag="networkAccess"):
    pass


class GuardianMcpToolCallAction(_GuardianAction, tag="mcpToolCall"):
    tool_name: Name


class GuardianRequestPermissionsAction(_GuardianAction, tag="requestPermissions"):
    permissions: PermissionProfile = msgspec.field(default_factory=PermissionProfile)


GuardianApprovalReviewAction = (
    GuardianCommandAction
    | GuardianExecveAction
    | GuardianApplyPatchAction
    | GuardianNetworkAccessAction
    | GuardianMcpToolCallAction
    | GuardianRequestPermissionsAction
)

GuardianReviewStatus = Literal["inProgress", "approved", "denied", "timedOut", "aborted"]


class GuardianReview(_Camel):
    status: GuardianReviewStatus


class GuardianReviewCompletedParams(_Camel):
    thread_id: Id
    turn_id: Id
    started_at_ms: Int64
    completed_at_ms: Int64
    review_id: Id
    review: GuardianReview
    action: GuardianApprovalReviewAction
    target_item_id: Id | None = None


# --- notifications --------------------------------------------------------------------------------


class TurnNotificationParams(_Camel):
    thread_id: Id
    turn: Turn


class TurnDiffParams(_Camel):
    """``diff`` is bounded only by the fact size: a real diff can be large, the reducer keeps its line counts."""

    thread_id: Id
    turn_id: Id
    diff: str


class ItemStartedParams(_Camel):
    item: ThreadItem
    thread_id: Id
    turn_id: Id
    started_at_ms: Int64


class ItemCompletedParams(_Camel):
    item: ThreadItem
    thread_id: Id
    turn_id: Id
    completed_at_ms: Int64


class _Notification(msgspec.Struct, kw_only=True, tag_field="method", gc=False):
    pass


class TurnStarted(_Notification, tag="turn/started"):
    params: TurnNotificationParams


class TurnCompleted(_Notification, tag="turn/completed"):
    params: TurnNotificationParams


class TurnDiffUpdated(_Notification, tag="turn/diff/updated"):
    params: TurnDiffParams


class ItemStarted(_Notification, tag="item/started"):
    params: ItemStartedParams


class ItemCompleted(_Notification, tag="item/completed"):
    params: ItemCompletedParams


class GuardianReviewStarted(_Notification, tag="item/autoApprovalReview/started"):
    """Explicitly ignored by the reducer."""


class GuardianReviewCompleted(_Notification, tag="item/autoApprovalReview/completed"):
    params: GuardianReviewCompletedParams


ServerNotification = (
    TurnStarted
    | TurnCompleted
    | TurnDiffUpdated
    | ItemStarted
    | ItemCompleted
    | GuardianReviewStarted
    | GuardianReviewCompleted
)
