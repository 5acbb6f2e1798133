extension Duration {
    /// The duration in seconds, as a Double (clock arithmetic in the scheduler, monitor and throttle; the CLI's timings).
    public var timeInterval: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}

/// Seconds to wait after `failures` consecutive failures of a background loop: 2, 4, 8, … doubling at most `doublings`
/// times and never more than `limit`.
func backoffSeconds(failures: Int, doublings: Int, limit: Int) -> Double {
    Double(min(limit, 1 << min(failures, doublings)))
}
