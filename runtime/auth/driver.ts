/**
 * What to do next in TDLib's authorization flow: a pure function of the current authorization state, the
 * inputs the account's Secrets provide, and which inputs were already tried. Each input is tried once per
 * version (a Secret's resourceVersion), so a wrong code or password waits for a new one instead of looping.
 */
import { AuthReason, type AuthReasonName } from '../../crds/conditions.js';
import type { TdObject } from '../tdlib/backend.js';

/** A value from a Secret, with the version that distinguishes a changed value from a retry of the same one. */
export interface VersionedInput {
  value: string;
  version: string;
}

export interface AuthInputs {
  type: 'User' | 'Bot';
  loginMethod: 'Code' | 'QR';
  phoneNumber?: string;
  botToken?: VersionedInput;
  password?: VersionedInput;
  code?: VersionedInput;
}

export interface TdlibParameters {
  databaseDirectory: string;
  filesDirectory: string;
  /** base64, as TDLib's JSON interface takes bytes. */
  databaseEncryptionKey: string;
  apiId: number;
  apiHash: string;
  applicationVersion: string;
}

export type AuthAction =
  /** Send `request`; `attempt` (if any) marks the input version it consumes. */
  | { kind: 'send'; request: TdObject; attempt?: string }
  /** Nothing to send until an input arrives; reason/message go to the Authorized condition. */
  | { kind: 'wait'; reason: AuthReasonName; message: string }
  | { kind: 'none' };

export const attemptKey = (kind: 'code' | 'password' | 'token' | 'phone', version: string): string =>
  `${kind}:${version}`;

export function tdlibParametersRequest(p: TdlibParameters): TdObject {
  return {
    '@type': 'setTdlibParameters',
    use_test_dc: false,
    database_directory: p.databaseDirectory,
    files_directory: p.filesDirectory,
    database_encryption_key: p.databaseEncryptionKey,
    // Only what a login needs: no message, chat or file caches (they would bloat the session backup).
    use_file_database: false,
    use_chat_info_database: false,
    use_message_database: false,
    use_secret_chats: false,
    api_id: p.apiId,
    api_hash: p.apiHash,
    system_language_code: 'en',
    device_model: 'tdlib-operator',
    system_version: '',
    application_version: p.applicationVersion,
  };
}

export function nextAuthAction(
  state: TdObject,
  inputs: AuthInputs,
  attempted: ReadonlySet<string>,
  parameters: () => TdlibParameters,
): AuthAction {
  switch (state['@type']) {
    case 'authorizationStateWaitTdlibParameters':
      return { kind: 'send', request: tdlibParametersRequest(parameters()) };
    case 'authorizationStateWaitPhoneNumber': {
      if (inputs.type === 'Bot') {
        if (!inputs.botToken)
          return {
            kind: 'wait',
            reason: AuthReason.BotTokenMissing,
            message: 'waiting for the bot token Secret',
          };
        const key = attemptKey('token', inputs.botToken.version);
        if (attempted.has(key))
          return {
            kind: 'wait',
            reason: AuthReason.BotTokenRejected,
            message: 'the bot token was rejected; update the bot token Secret',
          };
        return {
          kind: 'send',
          request: { '@type': 'checkAuthenticationBotToken', token: inputs.botToken.value },
          attempt: key,
        };
      }
      if (inputs.loginMethod === 'QR') {
        const key = attemptKey('phone', 'qr');
        if (attempted.has(key))
          return { kind: 'wait', reason: AuthReason.QrRequested, message: 'waiting for the QR login link' };
        return {
          kind: 'send',
          request: { '@type': 'requestQrCodeAuthentication', other_user_ids: [] },
          attempt: key,
        };
      }
      if (!inputs.phoneNumber)
        return {
          kind: 'wait',
          reason: AuthReason.PhoneNumberMissing,
          message: 'spec.phoneNumber is not set',
        };
      const key = attemptKey('phone', inputs.phoneNumber);
      if (attempted.has(key))
        return {
          kind: 'wait',
          reason: AuthReason.PhoneNumberRejected,
          message: 'Telegram rejected the phone number; check spec.phoneNumber',
        };
      return {
        kind: 'send',
        request: {
          '@type': 'setAuthenticationPhoneNumber',
          phone_number: inputs.phoneNumber,
          settings: null,
        },
        attempt: key,
      };
    }
    case 'authorizationStateWaitCode': {
      if (inputs.code && !attempted.has(attemptKey('code', inputs.code.version)))
        return {
          kind: 'send',
          request: { '@type': 'checkAuthenticationCode', code: inputs.code.value },
          attempt: attemptKey('code', inputs.code.version),
        };
      return {
        kind: 'wait',
        reason: AuthReason.WaitCode,
        message: 'waiting for the login code: run `kubectl telegram login <account>`',
      };
    }
    case 'authorizationStateWaitPassword': {
      if (!inputs.password)
        return {
          kind: 'wait',
          reason: AuthReason.PasswordRequired,
          message: 'the account has two-step verification: set spec.passwordSecretRef',
        };
      const key = attemptKey('password', inputs.password.version);
      if (attempted.has(key))
        return {
          kind: 'wait',
          reason: AuthReason.PasswordRejected,
          message: 'the 2FA password was rejected; update the password Secret',
        };
      return {
        kind: 'send',
        request: { '@type': 'checkAuthenticationPassword', password: inputs.password.value },
        attempt: key,
      };
    }
    case 'authorizationStateWaitOtherDeviceConfirmation':
      return {
        kind: 'wait',
        reason: AuthReason.WaitQrConfirmation,
        message: 'open status.qrCodeLink on a logged-in device to confirm the login',
      };
    case 'authorizationStateWaitRegistration':
      return {
        kind: 'wait',
        reason: AuthReason.RegistrationRequired,
        message: 'this phone number has no Telegram account; sign it up in an official app first',
      };
    case 'authorizationStateWaitEmailAddress':
    case 'authorizationStateWaitEmailCode':
      return {
        kind: 'wait',
        reason: AuthReason.EmailRequired,
        message: 'Telegram asks for an e-mail login step, which the operator does not support yet',
      };
    default:
      return { kind: 'none' };
  }
}

/** "authorizationStateWaitCode" -> "WaitCode": what status.authorizationState shows. */
export function shortStateName(type: string): string {
  return type.replace(/^authorizationState/, '').replace(/^connectionState/, '');
}
