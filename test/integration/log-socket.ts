// stderr a socket nobody reads (systemd's journal, a Node parent's stdio
// 'pipe'): the log goes out by send(2) without waiting, from the native addon
// (lib/log/log-writer.ts), so the server still serves and still stops. It needs
// the addon, so it runs under --start zygote, where 300 connections are quick.
import t from 'tap'
import { loadAddon } from '../../lib/native/addon.js'
import { servesAndStopsUnread } from '../fixtures/unread-stderr.js'

const { reason } = loadAddon()

t.test('300 connections into a stderr socket nobody reads are all served, and SIGTERM ends the server within its grace', { skip: reason ?? false }, (t) =>
  servesAndStopsUnread(t, 'socket', ['--start', 'zygote']))
