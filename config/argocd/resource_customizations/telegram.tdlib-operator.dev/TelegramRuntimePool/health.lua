-- Argo CD health check for TelegramRuntimePool (telegram.tdlib-operator.dev), see docs/argocd.md.
--
-- Written for Argo CD's default sandbox for argocd-cm scripts: no open libraries, only base and table
-- (so no string.*, no math.*, no method calls on strings), Lua 5.1 as gopher-lua runs it.
--
-- A pool is healthy when one runtime version serves all its accounts; a canary rollout is progress, as
-- Argo CD shows an Argo Rollouts Rollout.
--   Healthy      phase Healthy, for the current metadata.generation: one revision on every pod.
--   Progressing  the operator has not observed metadata.generation yet (no status, no observedGeneration,
--                or an older one), or phase Progressing: a canary step moving accounts, waiting for canary
--                pods, holding its pause, waiting for a conclusive analysis, or being deleted.
--   Suspended    phase Paused: spec.rollout.paused holds the rollout at its step (kubectl telegram rollout
--                resume); analysis and rollback go on.
--   Degraded     phase Degraded: the new revision was rolled back (an analysis failed, or kubectl telegram
--                rollout undo) and the spec still names it. The message is the RolledBack condition's, with
--                the revision.

local function health(status, message)
  return { status = status, message = message }
end

local function findCondition(status, conditionType)
  if type(status) ~= "table" or type(status.conditions) ~= "table" then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if type(condition) == "table" and condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

-- "Reason: message" of a condition.
local function describe(condition)
  if condition == nil then
    return ""
  end
  local reason = text(condition.reason)
  local message = text(condition.message)
  if reason == "" then
    return message
  end
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

-- "Phase: Reason: message" of `condition`, else of `fallback`, else "Phase: status.message".
local function inPhase(phase, status, condition, fallback)
  local why = describe(condition)
  if why == "" then
    why = describe(fallback)
  end
  if why ~= "" then
    return phase .. ": " .. why
  end
  local message = text(status.message)
  if message == "" then
    return phase
  end
  return phase .. ": " .. message
end

-- " (canary hosts 20% of the accounts)" during a rollout, "" without one or without a weight. The operator's
-- messages already name the step.
local function canaryShare(status)
  local step = status.rolloutStep
  local weight = tonumber(status.weight)
  if step == nil or step == "" or step == "-" or weight == nil then
    return ""
  end
  return " (canary hosts " .. text(weight) .. "% of the accounts)"
end

-- "; revision R rolled back, change the spec to roll out another": the RolledBack message says why, not what.
local function rolledBackRevision(status)
  if status.rolledBackRevision == nil or status.rolledBackRevision == "" then
    return ""
  end
  return "; revision " .. text(status.rolledBackRevision) .. " rolled back, change the spec to roll out another"
end

local function assess()
  local metadata = obj.metadata
  if type(metadata) ~= "table" then
    metadata = {}
  end
  local status = obj.status

  if metadata.deletionTimestamp ~= nil then
    return health("Progressing", "being deleted")
  end
  if type(status) ~= "table" then
    return health("Progressing", "Waiting for the operator to report the pool's status")
  end

  -- The operator writes status.observedGeneration with every status (its conditions carry none).
  local generation = tonumber(metadata.generation)
  local observed = tonumber(status.observedGeneration)
  if generation ~= nil and observed == nil then
    return health("Progressing", "Waiting for the operator to observe generation " .. text(generation))
  end
  if generation ~= nil and observed < generation then
    return health("Progressing", "Waiting for the operator to observe generation " .. text(generation) ..
      " (status is for generation " .. text(observed) .. ")")
  end

  local progressing = findCondition(status, "Progressing")
  local phase = status.phase
  if phase == nil then
    return health("Progressing", "Waiting for the operator to report a phase")
  end
  if phase == "Healthy" then
    return health("Healthy", inPhase(phase, status, progressing))
  end
  if phase == "Progressing" then
    return health("Progressing", inPhase(phase, status, progressing) .. canaryShare(status))
  end
  if phase == "Paused" then
    return health("Suspended", inPhase(phase, status, progressing) .. canaryShare(status))
  end
  if phase == "Degraded" then
    local rolledBack = findCondition(status, "RolledBack")
    local degraded = findCondition(status, "Degraded")
    return health("Degraded", inPhase(phase, status, rolledBack, degraded) .. rolledBackRevision(status))
  end
  return health("Progressing", "Waiting for a known phase (phase " .. text(phase) .. ")")
end

return assess()
