import { desiredRuntimeStatus, updatesCondition } from '../../../runtime/hosting/status.js';
import type { UpdatesFigures } from '../../../runtime/updates/account-updates.js';
import { DEFAULT_POLICY } from '../../../runtime/updates/delivery.js';
import { kindsOf, policyOf } from '../../../runtime/updates/settings.js';

const sink = { uri: 'https://receiver.example.com/events' };

describe('spec.updates to delivery settings', () => {
  it('defaults to the Bot API: everything but chat members, a day for messages, 150 s for button presses', () => {
    expect([...kindsOf({ sink })].sort()).toEqual([
      'CallbackQuery',
      'MessageDeleted',
      'MessageEdited',
      'MessageNew',
    ]);
    expect(policyOf({ sink })).toEqual(DEFAULT_POLICY);
  });

  it('takes the user’s kinds, parallelism, backoff and lifetimes', () => {
    const policy = policyOf({
      sink,
      maxParallelChats: 3,
      retry: { backoffSeconds: 2, maxBackoffSeconds: 30 },
      lifetimeSeconds: { messages: 600, callbackQueries: 20, chatMembers: 3600 },
    });
    expect(policy).toMatchObject({ maxParallelChats: 3, initialBackoffMs: 2000, maxBackoffMs: 30_000 });
    expect(policy.lifetimeMs).toEqual({
      MessageNew: 600_000,
      MessageEdited: 600_000,
      MessageDeleted: 600_000,
      CallbackQuery: 20_000,
      ChatMember: 3_600_000,
    });
    expect([...kindsOf({ sink, kinds: ['ChatMember'] })]).toEqual(['ChatMember']);
  });
});

describe('UpdatesDelivering and status.updates', () => {
  const figures: UpdatesFigures = {
    sinkURI: 'http://receiver.apps.svc.cluster.local/',
    delivered: 12,
    deadLettered: 0,
    dropped: 1,
    pending: 0,
    retrying: 0,
  };

  it('is True while nothing waits for a retry', () => {
    expect(updatesCondition(figures, 3)).toMatchObject({
      type: 'UpdatesDelivering',
      status: 'True',
      reason: 'Delivering',
      observedGeneration: 3,
    });
  });

  it('is False with the last failure while events wait for a retry', () => {
    const failing = updatesCondition(
      {
        ...figures,
        pending: 40,
        retrying: 2,
        lastFailure: { time: '2026-11-29T00:00:00Z', message: 'HTTP 503' },
      },
      3,
    );
    expect(failing).toMatchObject({ status: 'False', reason: 'SinkFailing' });
    expect(failing.message).toContain('HTTP 503');
    expect(failing.message).toContain('40 in the outbox');
  });

  it('is Unknown while this pod has only the previous host’s figures, which it keeps writing meanwhile', () => {
    expect(updatesCondition({ ...figures, inherited: true }, 2)).toMatchObject({
      status: 'Unknown',
      reason: 'Starting',
    });
    const status = desiredRuntimeStatus(
      { updates: { ...figures, inherited: true } },
      undefined,
      new Date(),
      'pod-1',
    );
    expect(status.updates).toEqual(figures);
  });

  it('names the field to fix when the sink or the token cannot be looked up', () => {
    const problem = {
      reason: 'SinkNotFound' as const,
      message: 'Service echo (spec.updates.sink.ref) does not exist',
    };
    expect(updatesCondition({ ...figures, problem }, 1)).toMatchObject({ status: 'False', ...problem });
  });

  it('writes status.updates without the problem, and no condition without spec.updates', () => {
    const now = new Date('2026-11-29T00:00:00Z');
    const withUpdates = desiredRuntimeStatus({ updates: figures }, undefined, now, 'pod-0');
    expect(withUpdates.updates).toEqual(figures);
    expect(withUpdates.conditions.map((c) => c.type)).toContain('UpdatesDelivering');
    const without = desiredRuntimeStatus({}, undefined, now, 'pod-0');
    expect(without.updates).toBeUndefined();
    expect(without.conditions.map((c) => c.type)).not.toContain('UpdatesDelivering');
  });
});
