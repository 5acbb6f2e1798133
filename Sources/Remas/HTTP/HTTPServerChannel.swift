import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel with one more handler, `ConnectionCloseAnnouncer`, between the HTTP/1 codec and
/// the conversion to HTTP types (Hummingbird's own `HTTP1Channel` only lets handlers in after that conversion, where the
/// request's HTTP version is gone). Otherwise the same pipeline as `HTTP1Channel`.
struct AnnouncingHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    /// Closes a connection that has been idle (no request in progress) this long.
    let idleTimeout: Duration?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
            try channel.pipeline.syncOperations.addHandler(ConnectionCloseAnnouncer())
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: self.idleTimeout, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        // Child tasks (the request's own) inherit the preference.
        await withTaskExecutorPreference(EventLoopTaskExecutor.on(asyncChannel.channel.eventLoop)) {
            await self.handleHTTP(asyncChannel: asyncChannel, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 that says `Connection: close` in every response after which it closes the connection.
    static func announcingHTTP1(idleTimeout: Duration?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in AnnouncingHTTP1Channel(responder: responder, idleTimeout: idleTimeout) }
    }
}

/// RFC 9112 §9.6: a server that closes the connection after a response says so in it (`Connection: close`). Clients
/// such as Python's `http.client` decide whether to reuse a connection from the response alone; without the header
/// they send the next request into a socket we are closing and get "Remote end closed connection without response".
///
/// The server closes after a response when the request did not keep the connection alive (`Connection: close` in any
/// case or token list, or HTTP/1.0 without `keep-alive`), and while it shuts down. For such a request the handler
/// writes `connection: close` into the request head too, the exact form Hummingbird's request loop checks before it
/// ends the connection, and adds `Connection: close` to the response head.
final class ConnectionCloseAnnouncer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Per request not yet answered, in order: whether the connection closes after its response.
    private var closing: [Bool] = []
    private var quiescing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = self.unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let close = !head.isKeepAlive
        if close { head.headers.replaceOrAdd(name: "connection", value: "close") }
        self.closing.append(close)
        context.fireChannelRead(self.wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = self.unwrapOutboundIn(data), head.status.code >= 200 else {
            context.write(data, promise: promise)
            return
        }
        let close = (self.closing.isEmpty ? false : self.closing.removeFirst()) || self.quiescing
        if close { head.headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(self.wrapOutboundOut(.head(head)), promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown: Hummingbird closes each connection after the response in progress.
        if event is ChannelShouldQuiesceEvent { self.quiescing = true }
        context.fireUserInboundEventTriggered(event)
    }
}
