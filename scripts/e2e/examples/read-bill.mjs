// Reads a deal's bill: the running totals from the market's runtime API, and each settled
// period from the `Settled` events of the blocks since FROM_BLOCK (default: the last 200, within
// a pruning node's recent state; older periods need an archive node).
//
//   DEAL_ID=0 node read-bill.mjs
import { connect, run } from './common.mjs';

run(async () => {
  const id = Number(process.env.DEAL_ID);
  if (!Number.isInteger(id)) throw new Error('set DEAL_ID');
  const api = await connect();
  const bill = await api.call.marketApi.bill(id);
  const head = (await api.rpc.chain.getHeader(await api.rpc.chain.getFinalizedHead())).number.toNumber();
  const from = process.env.FROM_BLOCK ? Number(process.env.FROM_BLOCK) : Math.max(0, head - 200);
  const periods = [];
  for (let number = from; number <= head; number++) {
    const at = await api.at(await api.rpc.chain.getBlockHash(number));
    for (const { event } of await at.query.system.events()) {
      if (api.events.market.Settled.is(event) && event.data.id.toNumber() === id) {
        periods.push({
          blocks: [event.data.periodStart.toNumber(), event.data.periodEnd.toNumber()],
          charges: event.data.charges.toJSON(),
          total: event.data.total.toBigInt()
        });
      }
    }
  }
  await api.disconnect();
  return { id, summary: bill.isSome ? bill.unwrap().toJSON() : null, periods };
});
