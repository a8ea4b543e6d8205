import { resolveSink, shownUri } from '../../../runtime/updates/sink.js';

const service = { ports: [{ port: 8080, name: 'http' }, { port: 9090 }] };

describe('resolveSink: the URL the runtime posts an account’s updates to', () => {
  it('resolves a Service to its cluster name and first port, with the uri as path', () => {
    expect(resolveSink('spec.updates.sink', { ref: { name: 'echo' } }, 'team-a', service)).toEqual({
      uri: 'http://echo.team-a.svc.cluster.local:8080/',
    });
    expect(
      resolveSink(
        'spec.updates.sink',
        { ref: { name: 'echo', port: 9090 }, uri: '/events' },
        'team-a',
        service,
      ),
    ).toEqual({
      uri: 'http://echo.team-a.svc.cluster.local:9090/events',
    });
  });

  it('uses https for a port that says so or when a CA bundle is given, and leaves default ports out', () => {
    expect(
      resolveSink('spec.updates.sink', { ref: { name: 'echo' } }, 'a', {
        ports: [{ port: 443, appProtocol: 'https' }],
      }),
    ).toEqual({ uri: 'https://echo.a.svc.cluster.local/' });
    expect(
      resolveSink('spec.updates.sink', { ref: { name: 'echo' }, caBundle: 'LS0t' }, 'a', service),
    ).toEqual({
      uri: 'https://echo.a.svc.cluster.local:8080/',
    });
    expect(
      resolveSink('spec.updates.sink', { ref: { name: 'echo' } }, 'a', { ports: [{ port: 80 }] }),
    ).toEqual({
      uri: 'http://echo.a.svc.cluster.local/',
    });
  });

  it('takes an absolute uri as it is', () => {
    expect(resolveSink('spec.updates.sink', { uri: 'https://r.example.com/e' }, 'a', undefined)).toEqual({
      uri: 'https://r.example.com/e',
    });
  });

  it('says which Service is missing or lacks the port, naming the field', () => {
    expect(
      resolveSink('spec.updates.deadLetterSink', { ref: { name: 'gone' } }, 'team-a', undefined),
    ).toEqual({
      reason: 'SinkNotFound',
      message:
        'Service gone (spec.updates.deadLetterSink.ref) does not exist in namespace team-a; create it or fix the name',
    });
    const noPort = resolveSink('spec.updates.sink', { ref: { name: 'echo', port: 7 } }, 'a', service);
    expect(noPort).toEqual({
      reason: 'SinkInvalid',
      message: 'Service echo has no port 7 (spec.updates.sink.ref.port); it has 8080, 9090',
    });
    expect(resolveSink('spec.updates.sink', { ref: { name: 'echo' } }, 'a', { ports: [] })).toMatchObject({
      reason: 'SinkInvalid',
    });
  });
});

describe('shownUri: what status, conditions and Events say of a sink', () => {
  it('masks credentials in the address, and leaves others alone', () => {
    expect(shownUri('https://bot:s3cret@receiver.example.com/events')).toBe(
      'https://***@receiver.example.com/events',
    );
    expect(shownUri('https://receiver.example.com/events')).toBe('https://receiver.example.com/events');
    expect(shownUri('http://echo.apps.svc.cluster.local:8080/')).toBe(
      'http://echo.apps.svc.cluster.local:8080/',
    );
  });
});
