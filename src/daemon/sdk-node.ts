/**
 * The daemon's config turned into the SDK's createNode(): over tor (onion-only, attached to
 * the daemon's tor: SOCKS for dialling, the node's own onion service published with its key),
 * over TCP, or `local`. The state dir holds the routing table and the own-record journal
 * (sealed with the identity's passphrase when one is configured), so what this node wrote
 * survives restarts of the daemon and of tor.
 */
import { errorMessage } from '../core/index.ts'
import { createNode, type OhtSdkNode } from '../sdk/index.ts'
import { DaemonError } from './errors.ts'
import { readPassphrase } from './identity-source.ts'
import type { NodeFactoryInput } from './node.ts'
import { torAttachOf } from './node-view.ts'

export async function createSdkDaemonNode (input: NodeFactoryInput): Promise<OhtSdkNode> {
  const { config, identity, clock } = input
  const transport = config.node.transport
  try {
    const passphrase = await readPassphrase(config.identity.passphraseFile)
    const common = {
      seed: identity.seed,
      dataDir: input.stateDir,
      journal: passphrase !== undefined ? { passphrase } : {},
      oht: { maxValueBytes: config.node.maxValueBytes },
      clock,
      log: input.log,
      ...(input.signal !== undefined ? { signal: input.signal } : {})
    }
    if (transport === 'local') return await createNode({ ...common, transport: 'local' })
    if (transport === 'tcp') return await createNode({ ...common, transport: 'tcp', listen: config.node.listen })
    if (input.tor === undefined) throw new DaemonError('DAEMON_NODE', 'the tor transport needs a tor')
    return await createNode({ ...common, transport: 'tor', tor: { attach: torAttachOf(input.tor), virtualPort: config.node.onionPort } })
  } catch (err) {
    if (err instanceof DaemonError) throw err
    if ((err as { code?: string }).code?.startsWith('OHT_JOURNAL_') === true) throw new DaemonError('DAEMON_STATE', errorMessage(err), { cause: err })
    throw new DaemonError('DAEMON_NODE', `the OHT node did not start: ${errorMessage(err)}`, { cause: err })
  }
}
