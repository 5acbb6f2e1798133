extension Duration {
    /// The duration in seconds, as a Double (clock arithmetic in the scheduler, monitor and throttle).
    var timeInterval: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}
