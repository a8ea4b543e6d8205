import { abortable } from '../../../operator/kube/util.js';

describe('abortable: a caller stops waiting on shared work without stopping it', () => {
  it('passes the value and the error of the work through', async () => {
    await expect(abortable(Promise.resolve(7), new AbortController().signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('boom')), new AbortController().signal)).rejects.toThrow(
      'boom',
    );
    await expect(abortable(Promise.resolve('no signal'))).resolves.toBe('no signal');
  });

  it("rejects with the signal's reason when it aborts first, while the work still completes for others", async () => {
    let finish: (value: string) => void = () => undefined;
    const work = new Promise<string>((resolve) => (finish = resolve));
    const controller = new AbortController();
    const waiting = abortable(work, controller.signal);
    const other = abortable(work, new AbortController().signal);
    controller.abort(new Error('account stopped'));
    await expect(waiting).rejects.toThrow('account stopped');
    finish('secret');
    await expect(other).resolves.toBe('secret');
  });

  it('rejects at once when the signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(abortable(new Promise(() => undefined), controller.signal)).rejects.toThrow('gone');
  });
});
