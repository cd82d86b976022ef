// Helpers for driving a podchain node through @polkadot/api.

/**
 * Signs and submits `tx` as `signer`; resolves with the block's events for it once finalized,
 * rejects with `section.Error` when it fails.
 */
export function submitFinalized (api, tx, signer) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        const detail = dispatchError.isModule
          ? (({ section, name }) => `${section}.${name}`)(api.registry.findMetaError(dispatchError.asModule))
          : dispatchError.toString();
        reject(new Error(`extrinsic failed: ${detail}`));
      } else if (status.isFinalized) {
        resolve(events.map(({ event }) => event));
      } else if (status.isInvalid || status.isDropped || status.isUsurped) {
        reject(new Error(`extrinsic ${status.type}`));
      }
    }).catch(reject);
  });
}
