// Reads the state from the host that served this page, and signs through the local daemon
// when the page runs there (oht app run): /api/submit exists only on the local run server.
'use strict'
const $ = (id) => document.getElementById(id)

function render (view) {
  $('count').textContent = String(view.state.signatures)
  $('hash').textContent = view.stateHash.slice(0, 16)
  const list = $('entries')
  list.replaceChildren(...view.state.entries.slice().reverse().map((e) => {
    const li = document.createElement('li')
    const who = document.createElement('strong')
    who.textContent = e.name
    const what = document.createElement('span')
    what.textContent = ' ' + e.message
    li.append(who, what)
    return li
  }))
}

async function refresh () {
  try {
    const r = await fetch('api/state', { cache: 'no-store' })
    if (r.ok) render(await r.json())
  } catch (err) {
    $('error').textContent = String(err)
  }
}

async function setup () {
  const probe = await fetch('api/submit', { method: 'OPTIONS' }).catch(() => undefined)
  const canSign = probe !== undefined && probe.status === 204
  $('sign').hidden = !canSign
  $('readonly').hidden = canSign
  $('sign').addEventListener('submit', async (ev) => {
    ev.preventDefault()
    $('error').textContent = ''
    const body = { type: 'sign', name: $('name').value, message: $('message').value }
    const r = await fetch('api/submit', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body }) })
    if (!r.ok) { $('error').textContent = (await r.json().catch(() => ({}))).error?.message ?? `error ${r.status}`; return }
    $('message').value = ''
    await refresh()
  })
  await refresh()
  setInterval(refresh, 3000)
}

setup()
