// Sums up the node throughput benchmark (scripts/throughput.sh):
//   node compare.mjs <result.json>...
// Prints each run's figures, the mean per chain, and the ratio podchain / reference of the
// means, in transfers per second and per block, for the steady and the backlog windows.

import { readFileSync } from 'node:fs';

const runs = process.argv.slice(2).map((path) => ({ path, ...JSON.parse(readFileSync(path, 'utf8')) }));
const byLabel = new Map();
for (const run of runs) {
  if (!byLabel.has(run.label)) byLabel.set(run.label, []);
  byLabel.get(run.label).push(run);
}
const mean = (xs) => xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : NaN;
const f1 = (x) => Number.isFinite(x) ? x.toFixed(1) : '-';

console.log('chain       runtime              slot  load(1m)  submitted/s  steady tx/s  tx/block  weight  backlog tx/s  tx/block  weight');
const means = {};
for (const [label, list] of byLabel) {
  for (const r of list) {
    console.log(`${label.padEnd(11)} ${r.runtime.padEnd(20)} ${String(r.slotMs / 1000).padStart(3)} s  ${String(r.load ?? '-').padStart(8)}  ` +
      `${f1(r.submitRate).padStart(11)}  ${f1(r.steady?.perSecond).padStart(11)}  ${f1(r.steady?.perBlock).padStart(8)}  ` +
      `${f1((r.steady?.meanNormalWeight ?? NaN) * 100).padStart(5)}%  ${f1(r.backlog?.perSecond).padStart(12)}  ` +
      `${f1(r.backlog?.perBlock).padStart(8)}  ${f1((r.backlog?.meanNormalWeight ?? NaN) * 100).padStart(5)}%`);
    if (r.blockEnds) console.log(`${''.padEnd(12)}blocks with transfers ended on: ${r.blockEnds}`);
  }
  means[label] = {
    steadyPerSecond: mean(list.map((r) => r.steady?.perSecond).filter(Number.isFinite)),
    steadyPerBlock: mean(list.map((r) => r.steady?.perBlock).filter(Number.isFinite)),
    backlogPerSecond: mean(list.map((r) => r.backlog?.perSecond).filter(Number.isFinite)),
    backlogPerBlock: mean(list.map((r) => r.backlog?.perBlock).filter(Number.isFinite))
  };
  const m = means[label];
  console.log(`${label.padEnd(11)} mean over ${list.length} run(s): steady ${f1(m.steadyPerSecond)} transfers/s, ${f1(m.steadyPerBlock)} per block; ` +
    `backlog ${f1(m.backlogPerSecond)} transfers/s, ${f1(m.backlogPerBlock)} per block`);
}

const t = means.reference;
for (const label of ['podchain', 'podchain-6s']) {
  const p = means[label];
  if (!p || !t) continue;
  const ratio = (a, b) => Number.isFinite(a / b) ? (a / b).toFixed(2) : '-';
  console.log(`ratio ${label} / reference: steady ${ratio(p.steadyPerSecond, t.steadyPerSecond)}x per second, ` +
    `${ratio(p.steadyPerBlock, t.steadyPerBlock)}x per block; backlog ${ratio(p.backlogPerSecond, t.backlogPerSecond)}x per second, ` +
    `${ratio(p.backlogPerBlock, t.backlogPerBlock)}x per block (goal: >= 0.95x per second)`);
}
