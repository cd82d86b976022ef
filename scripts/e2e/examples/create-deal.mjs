// Picks the cheapest provider for some resources through the runtime API and creates a
// metered deal with a deposit, bounded by the provider's quote as read now (the chain refuses
// the deal if the provider raises its prices before it executes) and by an egress limit. The manifest itself goes to the provider over libp2p (the
// `podchain` CLI does that); here its hash is given.
//
//   PUBLISHER_SECRET=//Dave MANIFEST_HASH=0x... node create-deal.mjs
//
// CPU_MILLICORES, MEMORY_MIB and DEPOSIT_POD size the deal (defaults 100, 64 and 10).
import { connect, POD, run, signer, submit } from './common.mjs';

run(async () => {
  const env = process.env;
  if (!env.PUBLISHER_SECRET || !env.MANIFEST_HASH) throw new Error('set PUBLISHER_SECRET and MANIFEST_HASH');
  const api = await connect();
  const publisher = await signer(env.PUBLISHER_SECRET);
  const resources = {
    cpuMillicores: Number(env.CPU_MILLICORES || 100),
    memoryMib: Number(env.MEMORY_MIB || 64),
    storageGib: 0,
    gpus: 0
  };
  const offers = await api.call.registryApi.matchProviders({
    resources, country: null, gpuModel: null, attestedOnly: false, maxPricePerHour: null, limit: 5
  });
  if (offers.length === 0) throw new Error('no provider can run these resources');
  const best = offers[0];
  const deposit = BigInt(env.DEPOSIT_POD || 10) * POD;
  const quote = (await api.query.registry.providers(best.provider)).unwrap().prices;
  const limits = { maxPrices: quote, maxEgressBytesPerSecond: 10 * 1024 * 1024 };
  const events = await submit(api,
    api.tx.market.createDeployment(best.provider, env.MANIFEST_HASH, resources, 'Metered', null, limits, deposit),
    publisher);
  const created = events.find((e) => api.events.market.DeploymentCreated.is(e));
  await api.disconnect();
  return {
    id: created.data.id.toNumber(),
    provider: best.provider.toString(),
    pricePerHour: best.pricePerHour.toBigInt(),
    deposit
  };
});
