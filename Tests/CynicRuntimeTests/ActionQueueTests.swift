import CCynicPlugin
@testable import CynicRuntime
import NIOCore
import Testing

/// The action queue's transitions, without a socket: what is taken in each phase, what comes out
/// next, and how the unsent bytes are counted.
@Suite("The action queue")
struct ActionQueueTests {
    private func bytes(_ count: Int) -> ByteBuffer {
        ByteBuffer(repeating: 0x61, count: count)
    }

    @Test("actions come out in order; a send, a wait and a shutdown hold the next one until done")
    func order() {
        var queue = ActionQueue()
        #expect(queue.enqueue(.send(bytes(3))) == CYNIC_OK)
        #expect(queue.enqueue(.wait(milliseconds: 5)) == CYNIC_OK)
        #expect(queue.enqueue(.then(tag: 7)) == CYNIC_OK)
        #expect(queue.unsentBytes == 3)
        #expect(queue.next() == .send(bytes(3)))
        #expect(queue.next() == nil, "the send is under way")
        #expect(queue.unsentBytes == 3, "written bytes still count until the write completes")
        queue.finishedSend(of: 3)
        #expect(queue.unsentBytes == 0)
        #expect(queue.next() == .wait(milliseconds: 5))
        #expect(queue.next() == nil)
        queue.finishedWaitOrShutdown()
        #expect(queue.next() == .then(tag: 7))
        #expect(queue.next() == nil)
        #expect(queue.isIdle)
    }

    @Test("after close or reset nothing more is taken, until cancel_pending")
    func finishing() {
        for end in [HostAction<ByteBuffer>.close, .reset] {
            var queue = ActionQueue()
            #expect(queue.enqueue(.send(bytes(2))) == CYNIC_OK)
            #expect(queue.enqueue(end) == CYNIC_OK)
            #expect(queue.phase == .finishing)
            #expect(queue.isFinishing)
            #expect(queue.enqueue(.send(bytes(1))) == CYNIC_ERR_CLOSED)
            #expect(queue.enqueue(.wait(milliseconds: 1)) == CYNIC_ERR_CLOSED)
            let (status, dropped) = queue.cancelPending(waitUnderWay: false)
            #expect(status == CYNIC_OK && dropped == 2)
            #expect(queue.phase == .open)
            #expect(queue.unsentBytes == 0)
            #expect(queue.enqueue(.send(bytes(1))) == CYNIC_OK)
        }
    }

    @Test("a send after shutdown_write is refused, not written into a closed socket")
    func sendAfterShutdown() {
        var queue = ActionQueue()
        #expect(queue.enqueue(.send(bytes(4))) == CYNIC_OK)
        #expect(queue.enqueue(.shutdownWrite) == CYNIC_OK)
        #expect(queue.phase == .writeShut)
        #expect(queue.enqueue(.send(bytes(1))) == CYNIC_ERR_CLOSED)
        #expect(queue.enqueue(.shutdownWrite) == CYNIC_OK, "shutting again changes nothing")
        #expect(queue.enqueue(.then(tag: 1)) == CYNIC_OK, "what sends nothing is still taken")
        #expect(queue.enqueue(.close) == CYNIC_OK)
        // Cancelled before the shutdown was performed: writing is open again.
        _ = queue.cancelPending(waitUnderWay: false)
        #expect(queue.phase == .open)
        // Performed: cancel_pending cannot take it back.
        #expect(queue.enqueue(.shutdownWrite) == CYNIC_OK)
        #expect(queue.next() == .shutdownWrite)
        queue.finishedWaitOrShutdown()
        _ = queue.cancelPending(waitUnderWay: false)
        #expect(queue.phase == .writeShut)
        #expect(queue.enqueue(.send(bytes(1))) == CYNIC_ERR_CLOSED)
    }

    @Test("cancel_pending ends a wait under way; the end drops the queue and refuses everything")
    func cancelAndEnd() {
        var queue = ActionQueue()
        #expect(queue.enqueue(.wait(milliseconds: 60_000)) == CYNIC_OK)
        #expect(queue.enqueue(.send(bytes(5))) == CYNIC_OK)
        #expect(queue.next() == .wait(milliseconds: 60_000))
        let (status, dropped) = queue.cancelPending(waitUnderWay: true)
        #expect(status == CYNIC_OK && dropped == 5)
        #expect(queue.isIdle)

        #expect(queue.enqueue(.send(bytes(6))) == CYNIC_OK)
        #expect(queue.enqueue(.send(bytes(7))) == CYNIC_OK)
        #expect(queue.next() == .send(bytes(6)))
        #expect(queue.end() == 7, "the queued send is dropped; the one under way reports back itself")
        #expect(queue.unsentBytes == 6)
        queue.finishedSend(of: 6)
        #expect(queue.unsentBytes == 0)
        #expect(queue.phase == .ended)
        #expect(!queue.isIdle)
        #expect(queue.next() == nil)
        #expect(queue.enqueue(.close) == CYNIC_ERR_CLOSED)
        #expect(queue.cancelPending(waitUnderWay: false).status == CYNIC_ERR_CLOSED)
    }
}
