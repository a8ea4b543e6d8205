-- Argo CD health check for TelegramAccount (telegram.tdlib-operator.dev), see docs/argocd.md.
--
-- Written for Argo CD's default sandbox for argocd-cm scripts: no open libraries, only base and table
-- (so no string.*, no math.*, no method calls on strings), Lua 5.1 as gopher-lua runs it.
--
--   Healthy      Ready=True: logged in and connected on the runtime pod the account is placed on.
--   Progressing  the operator or the runtime pod has not caught up with metadata.generation yet, or a step
--                that ends by itself: starting, waiting for the session Lease or the runtime pod, connecting,
--                being deleted.
--   Suspended    spec.suspend is true, or the login waits for a person: the code Telegram sent (entered
--                with `kubectl telegram login`) or a QR confirmation from a logged-in device.
--   Degraded     something needs a fix: a Secret missing or not opted in, a full runtime pool, rejected
--                API credentials, phone number, bot token or 2FA password, a lost runtime pod, a session
--                logged out or belonging to someone else, an unusable proxy.

-- Ready=False reasons that finish by themselves: the runtime's steps, TDLib's transient authorization
-- states (reported as the reason before the login driver acts) and connection states.
local progressingReasons = {
  Starting = true,
  WaitingForLease = true,
  WaitingForRuntime = true,
  Closing = true,
  QrRequested = true,
  WaitTdlibParameters = true,
  WaitPhoneNumber = true,
  WaitPassword = true,
  LoggingOut = true,
  Closed = true,
  WaitingForNetwork = true,
  ConnectingToProxy = true,
  Connecting = true,
  Updating = true,
  Unknown = true,
  Deleting = true,
}

-- Ready=False reasons that wait for a person to do the next step of a login (nothing in the spec is wrong).
local suspendedReasons = {
  WaitCode = true,
  WaitQrConfirmation = true,
  WaitOtherDeviceConfirmation = true,
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

-- The command that completes an interactive login step, for the message.
local function loginCommand(metadata)
  if metadata.name == nil then
    return ""
  end
  local command = " (this account: kubectl telegram login " .. text(metadata.name)
  if metadata.namespace ~= nil then
    command = command .. " -n " .. text(metadata.namespace)
  end
  return command .. ")"
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
  local ready = findCondition(status, "Ready")

  if metadata.deletionTimestamp ~= nil then
    if ready ~= nil and ready.reason == "Deleting" then
      return health("Progressing", describe(ready))
    end
    return health("Progressing", "being deleted")
  end
  if type(status) ~= "table" then
    return health("Progressing", "Waiting for the operator to report the account's status")
  end

  local generation = tonumber(metadata.generation)
  local observed = tonumber(status.observedGeneration)
  if generation ~= nil and observed ~= nil and observed < generation then
    return health("Progressing", "Waiting for the operator to observe generation " .. text(generation) ..
      " (status is for generation " .. text(observed) .. ")")
  end
  if ready == nil then
    return health("Progressing", "Waiting for the operator to report the Ready condition")
  end
  local readyObserved = tonumber(ready.observedGeneration)
  if generation ~= nil and readyObserved ~= nil and readyObserved < generation then
    return health("Progressing", "Waiting for the runtime pod to report generation " .. text(generation) ..
      "; Ready is still for generation " .. text(readyObserved) .. " (" .. describe(ready) .. ")")
  end

  if ready.reason == "Suspended" then
    return health("Suspended", describe(ready))
  end
  if spec.suspend == true then
    return health("Suspended", "spec.suspend is true (Ready " .. text(ready.status) .. ", " .. describe(ready) .. ")")
  end

  if ready.status == "True" then
    return health("Healthy", describe(ready))
  end
  if ready.status == "Unknown" then
    if ready.reason == "RuntimeLost" then
      return health("Degraded", describe(ready))
    end
    return health("Progressing", describe(ready))
  end
  if ready.status == "False" then
    if suspendedReasons[ready.reason] then
      return health("Suspended", describe(ready) .. loginCommand(metadata))
    end
    if progressingReasons[ready.reason] then
      return health("Progressing", describe(ready))
    end
    -- The operator's own (SecretNotFound, SecretNotOptedIn, PoolFull, SessionKeyMissing...), the login
    -- driver's (PasswordRequired, BotTokenRejected...) and TDLib's errors (PHONE_CODE_INVALID...).
    return health("Degraded", describe(ready))
  end
  return health("Progressing", "Waiting for the Ready condition to settle (" .. describe(ready) .. ")")
end

return assess()
