"""App-server v2 protocol payloads that facts embed, typed as the app-server writes them.

Only the fields the reducer reads are declared; msgspec ignores the rest, so a newer app-server
that adds fields still decodes. Field names are camelCase on the wire (``rename="camel"``) unless a
comment says the Rust core type serialises snake_case (those structs carry no ``rename``).

Tagged unions follow the protocol's own tags: requests, responses and notifications are tagged by
``"method"``, thread items and guardian actions by ``"type"``. A method or item type that is not
declared here is a decode error (the fact is dead-lettered with the path of the bad field).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

RequestId = str | int
"""JSON-RPC request id: a JSON string or integer. ``"41"`` and ``41`` are different ids."""


class _Camel(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    """Base of protocol structs whose wire names are camelCase."""


# --- initialize -----------------------------------------------------------------------------------


class ClientInfo(_Camel):
    name: str
    version: str
    title: str | None = None


class InitializeCapabilities(_Camel):
    experimental_api: bool = False
    request_attestation: bool = False
    opt_out_notification_methods: list[str] | None = None


class InitializeParams(_Camel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities | None = None


class RuntimeMetadata(msgspec.Struct, kw_only=True, gc=False):
    """Process runtime of the app-server (snake_case, as the analytics crate writes it)."""

    codex_rs_version: str
    runtime_os: str
    runtime_os_version: str
    runtime_arch: str


RpcTransport = Literal["stdio", "websocket", "in_process"]

# --- threads and turns ----------------------------------------------------------------------------


class ThreadSpawn(msgspec.Struct, kw_only=True, gc=False):
    """``SubAgentSource::ThreadSpawn`` (core type, snake_case)."""

    parent_thread_id: str
    depth: int = 0
    agent_path: str | None = None
    agent_nickname: str | None = None
    agent_role: str | None = None


class SubAgentSourceObject(msgspec.Struct, kw_only=True, gc=False):
    """The object forms of ``SubAgentSource``: ``{"thread_spawn": {...}}`` or ``{"other": "name"}``."""

    thread_spawn: ThreadSpawn | None = None
    other: str | None = None


SubAgentSource = str | SubAgentSourceObject
"""``"review"``, ``"compact"``, ``"memory_consolidation"``, or one of the object forms."""


class SessionSourceObject(_Camel):
    """The object forms of ``SessionSource``: ``{"custom": str}`` or ``{"subAgent": SubAgentSource}``."""

    custom: str | None = None
    sub_agent: SubAgentSource | None = None


SessionSource = str | SessionSourceObject
"""``"cli"``, ``"vscode"``, ``"exec"``, ``"appServer"``, ``"unknown"`` (any other string), or an object."""


class Thread(_Camel):
    id: str
    session_id: str | None = None
    ephemeral: bool = False
    created_at: int = 0
    source: SessionSource = "unknown"
    thread_source: str | None = None
    parent_thread_id: str | None = None
    forked_from_id: str | None = None


class CodexErrorInfo(_Camel):
    """``turn.error``; ``codexErrorInfo`` is kept as raw JSON (its own enum is reduced elsewhere)."""

    message: str | None = None
    codex_error_info: Any = None


TurnStatus = Literal["completed", "interrupted", "failed", "inProgress"]


class Turn(_Camel):
    id: str
    status: TurnStatus = "inProgress"
    error: CodexErrorInfo | None = None
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None


class UserInput(msgspec.Struct, gc=False):
    """One input item; only its ``type`` matters (``image`` and ``localImage`` count as images)."""

    type: str


# --- client requests and responses ----------------------------------------------------------------


class TurnStartParams(_Camel):
    thread_id: str
    input: list[UserInput] = []


class TurnSteerParams(_Camel):
    thread_id: str
    expected_turn_id: str
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
    model: str = ""


class TurnStartResponse(_Camel):
    turn: Turn


class TurnSteerResponse(_Camel):
    turn_id: str


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
    code: int
    message: str
    data: Any = None


# --- approval requests (server -> client) ---------------------------------------------------------


class NetworkApprovalContext(_Camel):
    host: str
    protocol: str | None = None


class NetworkPermission(_Camel):
    enabled: bool | None = None


class PermissionProfile(_Camel):
    """``additionalPermissions`` / ``permissions`` of approval requests (camelCase on the wire)."""

    network: NetworkPermission | None = None
    file_system: Any = None


class NetworkPolicyAmendment(msgspec.Struct, kw_only=True, gc=False):
    host: str
    action: Literal["allow", "deny"]


class CommandExecutionApprovalParams(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    started_at_ms: int
    approval_id: str | None = None
    network_approval_context: NetworkApprovalContext | None = None
    additional_permissions: PermissionProfile | None = None
    proposed_network_policy_amendments: list[NetworkPolicyAmendment] | None = None
    # Carried by the PR so analytics *could* tell shell from unified_exec; no reducer version reads it
    # and no output field holds it (docs/differences.md).
    source: str | None = None


class FileChangeApprovalParams(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    started_at_ms: int
    grant_root: str | None = None


class PermissionsApprovalParams(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    started_at_ms: int
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
    execpolicy_amendment: list[str] = []


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
    """Core ``PermissionProfile`` (snake_case). Empty iff both members are null."""

    network: EffectiveNetwork | None = None
    file_system: Any = None


class RequestPermissionsResponse(msgspec.Struct, kw_only=True, gc=False):
    """Core ``RequestPermissionsResponse`` (snake_case)."""

    permissions: EffectivePermissions = msgspec.field(default_factory=EffectivePermissions)
    scope: Literal["turn", "session"] = "turn"
    strict_auto_review: bool | None = None


# --- thread items ---------------------------------------------------------------------------------


class CommandAction(msgspec.Struct, gc=False):
    type: str


class CommandExecutionItem(_Camel, tag_field="type", tag="commandExecution"):
    id: str
    status: Literal["inProgress", "completed", "failed", "declined"] = "inProgress"
    source: Literal["agent", "userShell", "unifiedExecStartup", "unifiedExecInteraction"] = "agent"
    command_actions: list[CommandAction] = []
    exit_code: int | None = None
    duration_ms: int | None = None


class PatchChangeKind(msgspec.Struct, kw_only=True, gc=False):
    """``{"type": "add"|"delete"|"update", "move_path": ...}`` (``move_path`` is snake_case)."""

    type: Literal["add", "delete", "update"]
    move_path: str | None = None


class FileUpdateChange(msgspec.Struct, kw_only=True, gc=False):
    path: str = ""
    kind: PatchChangeKind


class FileChangeItem(_Camel, tag_field="type", tag="fileChange"):
    id: str
    status: Literal["inProgress", "completed", "failed", "declined"] = "inProgress"
    changes: list[FileUpdateChange] = []


class McpToolCallItem(_Camel, tag_field="type", tag="mcpToolCall"):
    id: str
    server: str
    tool: str
    status: Literal["inProgress", "completed", "failed"] = "inProgress"
    error: Any = None
    duration_ms: int | None = None


class DynamicContentItem(msgspec.Struct, gc=False):
    type: str


class DynamicToolCallItem(_Camel, tag_field="type", tag="dynamicToolCall"):
    id: str
    tool: str
    status: Literal["inProgress", "completed", "failed"] = "inProgress"
    content_items: list[DynamicContentItem] | None = None
    success: bool | None = None
    duration_ms: int | None = None


class AgentState(_Camel):
    status: Literal["pendingInit", "running", "interrupted", "completed", "errored", "shutdown", "notFound"]
    message: str | None = None


class CollabAgentToolCallItem(_Camel, tag_field="type", tag="collabAgentToolCall"):
    id: str
    tool: Literal["spawnAgent", "sendInput", "resumeAgent", "wait", "closeAgent"]
    status: Literal["inProgress", "completed", "failed"] = "inProgress"
    sender_thread_id: str = ""
    receiver_thread_ids: list[str] = []
    model: str | None = None
    reasoning_effort: str | None = None
    agents_states: dict[str, AgentState] = {}


class WebSearchAction(msgspec.Struct, kw_only=True, gc=False):
    """``search{query, queries}``, ``openPage{url}``, ``findInPage{url, pattern}`` or anything else."""

    type: str
    query: str | None = None
    queries: list[str] | None = None


class WebSearchItem(_Camel, tag_field="type", tag="webSearch"):
    id: str
    query: str = ""
    action: WebSearchAction | None = None


class ImageGenerationItem(_Camel, tag_field="type", tag="imageGeneration"):
    id: str
    status: str = ""
    revised_prompt: str | None = None
    saved_path: str | None = None


class _OtherItem(_Camel, tag_field="type"):
    id: str


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
    source: str | None = None


class GuardianExecveAction(_GuardianAction, tag="execve"):
    source: str | None = None


class GuardianApplyPatchAction(_GuardianAction, tag="applyPatch"):
    pass


class GuardianNetworkAccessAction(_GuardianAction, tag="networkAccess"):
    pass


class GuardianMcpToolCallAction(_GuardianAction, tag="mcpToolCall"):
    tool_name: str


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
    thread_id: str
    turn_id: str
    started_at_ms: int
    completed_at_ms: int
    review_id: str
    review: GuardianReview
    action: GuardianApprovalReviewAction
    target_item_id: str | None = None


# --- notifications --------------------------------------------------------------------------------


class TurnNotificationParams(_Camel):
    thread_id: str
    turn: Turn


class TurnDiffParams(_Camel):
    thread_id: str
    turn_id: str
    diff: str


class ItemStartedParams(_Camel):
    item: ThreadItem
    thread_id: str
    turn_id: str
    started_at_ms: int


class ItemCompletedParams(_Camel):
    item: ThreadItem
    thread_id: str
    turn_id: str
    completed_at_ms: int


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
