/// <reference types="@prebuilt-tdlib/types" />
/**
 * TDLib's schema, typed from the published `tdlib-types` package (@prebuilt-tdlib/types) instead of a
 * hand-written copy. That package follows tdl's convention of naming the type tag `_`; TDLib's JSON
 * interface, which is what crosses our boundary, calls it '@type'. The mapping below renames the key at
 * the type level only: nothing is renamed at run time, so the hot path stays JSON.stringify/JSON.parse.
 */
import type * as Td from 'tdlib-types';

/** Recursively renames `_` to '@type'; distributes over unions so discriminated unions keep working. */
export type Wire<T> = T extends readonly (infer E)[]
  ? Wire<E>[]
  : T extends { readonly _: string }
    ? { [K in keyof T as K extends '_' ? '@type' : K]: Wire<T[K]> }
    : T;

/** Same as Wire but for request input: arrays become readonly so callers may pass readonly data. */
export type WireInput<T> = T extends readonly (infer E)[]
  ? readonly WireInput<E>[]
  : T extends { readonly _: string }
    ? { [K in keyof T as K extends '_' ? '@type' : K]: WireInput<T[K]> }
    : T;

/** Every TDLib method name ('testSquareInt', 'setTdlibParameters', ...). */
export type TdMethod = Td.$FunctionName;
/** Methods td_execute accepts (synchronous, no client needed). */
export type TdSyncMethod = Td.$SyncFunctionName;

/** A request for method M as it goes over the wire: { '@type': M, ...fields }. */
export type TdRequest<M extends TdMethod> = WireInput<Td.$FunctionInputByName[M]>;
/** What method M answers with when it succeeds. */
export type TdResponse<M extends TdMethod> = Wire<Td.$FunctionResultByName[M]>;

/** Any update TDLib pushes without a request. */
export type TdUpdate = Wire<Td.Update>;
export type TdAuthorizationState = Wire<Td.AuthorizationState>;
export type TdAuthorizationStateType = TdAuthorizationState['@type'];
export type TdErrorObject = Wire<Td.error>;

/** Re-exported so callers can name any other schema object: `TdObjectOf<Td.proxy>`. */
export type { Td };
