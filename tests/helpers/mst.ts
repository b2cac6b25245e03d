/** MST walks for tests: what a tree holds, to compare with what the mirror kept of it. */
import { toBlockstore, type KeyRange } from '../../src/verify/mst.ts'

export const inRanges = (ranges: KeyRange[], key: string): boolean => ranges.some((r) => key >= r.from && key < r.to)

/** Every node reachable from `root` among `blocks`, with the keys of its whole subtree. */
export async function subtreeKeys(blocks: Map<string, Uint8Array>, root: string): Promise<Map<string, string[]>> {
  const store = toBlockstore(blocks)
  const out = new Map<string, string[]>()
  const visit = async (cid: string): Promise<string[]> => {
    const node = await store.nodes.get(cid)
    const keys = [...node.keys]
    for (const sub of node.subtrees) if (sub) keys.push(...(await visit(sub.$link)))
    out.set(cid, keys)
    return keys
  }
  await visit(root)
  return out
}
