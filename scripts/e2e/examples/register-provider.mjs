// Registers the account of PROVIDER_SECRET as a provider with its agent's endpoint, and bonds
// STAKE planck (default 100 POD) so it can accept deals.
//
//   PROVIDER_SECRET=//Charlie PEER_ID=12D3KooW... MULTIADDR=/ip4/127.0.0.1/tcp/30555 \
//   GATEWAY_URL=http://127.0.0.1:9656 INGRESS_DOMAIN=localhost node register-provider.mjs
//
// GATEWAY_URL is where SLA probers reach the agent's HTTP gateway (`--gateway-listen`), and
// INGRESS_DOMAIN the agent's `--ingress-domain`: a deal named `web` is `web.<INGRESS_DOMAIN>`.
//
// Capacity, prices and region have defaults fit for a demo: override them with CPU_MILLICORES,
// MEMORY_MIB, STORAGE_GIB, CPU_PRICE (planck per millicore-second) and COUNTRY.
import { connect, run, signer, submit } from './common.mjs';

run(async () => {
  const env = process.env;
  for (const name of ['PROVIDER_SECRET', 'PEER_ID', 'MULTIADDR', 'GATEWAY_URL', 'INGRESS_DOMAIN']) {
    if (!env[name]) throw new Error(`set ${name}`);
  }
  const api = await connect();
  const provider = await signer(env.PROVIDER_SECRET);
  const registration = {
    capacity: {
      resources: {
        cpuMillicores: Number(env.CPU_MILLICORES || 2000),
        memoryMib: Number(env.MEMORY_MIB || 2048),
        storageGib: Number(env.STORAGE_GIB || 10),
        gpus: 0
      },
      gpuModel: ''
    },
    prices: {
      cpuPerMillicoreSecond: BigInt(env.CPU_PRICE || 1_000_000),
      memoryPerMibSecond: 1_000n,
      storagePerGibSecond: 1_000n,
      gpuPerSecond: 0n,
      egressPerByte: 1n
    },
    rentDiscount: 10,
    region: { country: env.COUNTRY || 'DE', location: null },
    endpoint: { peerId: env.PEER_ID, multiaddrs: [env.MULTIADDR] },
    gatewayUrl: env.GATEWAY_URL,
    ingressDomain: env.INGRESS_DOMAIN
  };
  const events = await submit(api, api.tx.registry.registerProvider(registration), provider);
  const registered = events.find((e) => api.events.registry.ProviderRegistered.is(e));
  const stake = BigInt(env.STAKE || 100_000_000_000_000n);
  await submit(api, api.tx.providerStaking.bond(stake), provider);
  const ledger = (await api.query.providerStaking.ledgers(provider.address)).unwrap();
  const info = (await api.query.registry.providers(provider.address)).unwrap();
  await api.disconnect();
  return {
    provider: provider.address,
    registered: Boolean(registered),
    stake: ledger.active.toString(),
    peerId: info.endpoint.peerId.toUtf8(),
    free: info.capacity.resources.toJSON()
  };
});
