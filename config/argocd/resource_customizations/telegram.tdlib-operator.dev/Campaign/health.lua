-- Argo CD health check for Campaign (telegram.tdlib-operator.dev), see docs/argocd.md.
--
-- Written for Argo CD's default sandbox for argocd-cm scripts: no open libraries, only base and table
-- (so no string.*, no math.*, no method calls on strings), Lua 5.1 as gopher-lua runs it.
--
-- A Campaign is a job: it is Healthy once it is done.
--   Healthy      phase Completed: every recipient is final (sent, failed or in doubt), or nobody is listed.
--   Progressing  the operator has not observed metadata.generation yet, or phase Pending (planning) or
--                Running (sending, or finishing the sends in flight before it pauses or ends).
--   Suspended    phase Scheduled (waiting for its start time or send window), or Paused because of
--                spec.suspend, outside the send window, or because none of its senders can send now.
--   Degraded     phase Failed (started too late, or the end time passed with recipients left), or Paused by
--                itself: AutoPaused (too many sends failed), RecipientsMissing (a recipient ConfigMap is
--                not found), or NoSender while no TelegramAccount is selected at all.

-- Paused reasons that need someone to fix something; other pauses wait for time or for a sender.
local degradedPauseReasons = {
  AutoPaused = true,
  RecipientsMissing = true,
}

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

-- "Phase: Reason: message", without the reason when it only repeats the phase.
local function inPhase(phase, condition)
  if condition == nil then
    return phase
  end
  if condition.reason == phase then
    return phase .. ": " .. text(condition.message)
  end
  return phase .. ": " .. describe(condition)
end

-- " (sent 10 of 20, failed 1, in doubt 1)" from the counters, or "" while there are no recipients.
local function counters(status)
  local total = tonumber(status.total)
  if total == nil or total == 0 then
    return ""
  end
  local out = " (sent " .. text(tonumber(status.sent) or 0) .. " of " .. text(total)
  local failed = tonumber(status.failed) or 0
  if failed > 0 then
    out = out .. ", failed " .. text(failed)
  end
  local inDoubt = tonumber(status.inDoubt) or 0
  if inDoubt > 0 then
    out = out .. ", in doubt " .. text(inDoubt)
  end
  return out .. ")"
end

local function hasSenders(status)
  return type(status.senders) == "table" and status.senders[1] ~= nil
end

local function assess()
  local metadata = obj.metadata
  if type(metadata) ~= "table" then
    metadata = {}
  end
  local spec = obj.spec
  if type(spec) ~= "table" then
    spec = {}
  end
  local status = obj.status

  if metadata.deletionTimestamp ~= nil then
    return health("Progressing", "being deleted")
  end
  if type(status) ~= "table" then
    return health("Progressing", "Waiting for the operator to plan the campaign")
  end

  local ready = findCondition(status, "Ready")
  local generation = tonumber(metadata.generation)
  local observed = tonumber(status.observedGeneration)
  if observed == nil and ready ~= nil then
    observed = tonumber(ready.observedGeneration)
  end
  if generation ~= nil and observed ~= nil and observed < generation then
    return health("Progressing", "Waiting for the operator to observe generation " .. text(generation) ..
      " (status is for generation " .. text(observed) .. ")")
  end

  local phase = status.phase
  if phase == nil then
    return health("Progressing", "Waiting for the operator to report a phase")
  end
  if phase == "Completed" then
    if ready == nil then
      return health("Healthy", "Completed" .. counters(status))
    end
    return health("Healthy", inPhase(phase, ready))
  end
  if phase == "Pending" then
    return health("Progressing", "Pending: the operator is planning the recipients")
  end
  if phase == "Running" then
    local progressing = findCondition(status, "Progressing")
    if progressing ~= nil and progressing.status == "True" then
      local eta = ""
      if status.estimatedCompletionTime ~= nil then
        eta = ", done around " .. text(status.estimatedCompletionTime)
      end
      return health("Progressing", "Running: " .. describe(progressing) .. counters(status) .. eta)
    end
    -- Held (suspended, auto-paused, no sender) or past its end time: the phase says Paused or Failed once
    -- the sends already in flight are answered.
    local why = describe(progressing)
    if why == "" then
      why = describe(ready)
    end
    if why ~= "" then
      why = why .. "; "
    end
    return health("Progressing", "Running: " .. why .. "finishing " .. text(tonumber(status.inFlight) or 0) ..
      " sends in flight" .. counters(status))
  end
  if phase == "Scheduled" then
    return health("Suspended", inPhase(phase, ready))
  end
  if phase == "Paused" then
    local paused = findCondition(status, "Paused")
    if paused == nil then
      paused = ready
    end
    local reason = nil
    if paused ~= nil then
      reason = paused.reason
    end
    local message = inPhase(phase, paused) .. counters(status)
    if spec.suspend == true then
      return health("Suspended", message)
    end
    if degradedPauseReasons[reason] then
      return health("Degraded", message)
    end
    if reason == "NoSender" and not hasSenders(status) then
      return health("Degraded", message)
    end
    return health("Suspended", message)
  end
  if phase == "Failed" then
    return health("Degraded", inPhase(phase, ready) .. counters(status))
  end
  return health("Progressing", "Waiting for a known phase (phase " .. text(phase) .. ")")
end

return assess()
