// Bar charts as inline SVG for the HTML cutover report: geometry and markup only, no I/O, same input same bytes.

/// One chart: categories along the x axis, and per category one bar per series, side by side or stacked.
/// Every (series, category) pair gets one `<rect class="bar">`, even at height 0, so the markup
/// says how many values were drawn whatever they are.
struct BarChart {
    struct Series {
        var name: String
        /// A CSS colour.
        var colour: String
        /// One value per category.
        var values: [Double]
    }

    var title: String
    var categories: [String]
    var series: [Series]
    var stacked = false
    var xLabel: String
    var yLabel: String
    /// How a value reads on the y axis and in a bar's tooltip.
    var format: (Double) -> String
    /// Shown in place of the bars when there is nothing to draw, saying why.
    var emptyMessage: String
    /// At most this many category labels are written under the axis, so long timelines stay legible.
    var maxLabels = 14

    /// Drawing size in SVG units; the browser scales the whole to the page width.
    static let width = 1100.0
    static let height = 340.0
    /// Room between the drawing's edge and the title and legend.
    private static let inset = 12.0
    private static let left = 70.0, right = 16.0, top = 64.0, bottom = 64.0
    private static var plotWidth: Double { width - left - right }
    private static var plotHeight: Double { height - top - bottom }

    var isEmpty: Bool { categories.isEmpty || series.isEmpty }

    func svg() -> String {
        var out = "<svg class=\"chart\" viewBox=\"0 0 \(Self.number(Self.width)) \(Self.number(Self.height))\" role=\"img\">"
        out += "<title>\(title.htmlEscaped)</title>"
        out += text(title, x: Self.inset, y: 20, attributes: "class=\"chart-title\"")
        if isEmpty {
            out += text(emptyMessage, x: Self.width / 2, y: Self.height / 2, attributes: "class=\"empty\" text-anchor=\"middle\"")
            return out + "</svg>"
        }
        out += legend()
        let ticks = Self.ticks(upTo: maximum)
        let top = ticks.last ?? 1
        for tick in ticks {
            let y = Self.y(tick, top: top)
            out += "<line class=\"grid\" x1=\"\(Self.number(Self.left))\" y1=\"\(Self.number(y))\" "
                + "x2=\"\(Self.number(Self.width - Self.right))\" y2=\"\(Self.number(y))\"/>"
            out += text(format(tick), x: Self.left - 6, y: y + 4, attributes: "class=\"tick\" text-anchor=\"end\"")
        }
        let band = Self.plotWidth / Double(categories.count)
        // Bars fill 80% of a band; the rest separates categories.
        let barWidth = band * 0.8 / Double(stacked ? 1 : series.count)
        let every = max(1, (categories.count + maxLabels - 1) / maxLabels)
        for (c, category) in categories.enumerated() {
            let start = Self.left + band * Double(c) + band * 0.1
            var base = 0.0
            for (s, entry) in series.enumerated() {
                let value = c < entry.values.count ? entry.values[c] : 0
                let x = stacked ? start : start + barWidth * Double(s)
                let upper = Self.y(base + value, top: top), lower = Self.y(base, top: top)
                out += "<rect class=\"bar\" data-series=\"\(entry.name.htmlEscaped)\" fill=\"\(entry.colour.htmlEscaped)\" "
                    + "x=\"\(Self.number(x))\" y=\"\(Self.number(upper))\" width=\"\(Self.number(barWidth))\" "
                    + "height=\"\(Self.number(lower - upper))\"><title>\((entry.name + ", " + category + ": " + format(value)).htmlEscaped)</title></rect>"
                if stacked { base += value }
            }
            if c % every == 0 {
                out += text(category, x: Self.left + band * (Double(c) + 0.5), y: Self.height - Self.bottom + 18,
                            attributes: "class=\"tick\" text-anchor=\"middle\"")
            }
        }
        let baseline = Self.height - Self.bottom
        out += "<line class=\"axis\" x1=\"\(Self.number(Self.left))\" y1=\"\(Self.number(baseline))\" "
            + "x2=\"\(Self.number(Self.width - Self.right))\" y2=\"\(Self.number(baseline))\"/>"
        out += text(xLabel, x: Self.left + Self.plotWidth / 2, y: Self.height - 14, attributes: "class=\"axis-label\" text-anchor=\"middle\"")
        out += text(yLabel, x: 0, y: 0, attributes: "class=\"axis-label\" text-anchor=\"middle\" "
            + "transform=\"translate(16 \(Self.number(Self.top + Self.plotHeight / 2))) rotate(-90)\"")
        return out + "</svg>"
    }

    /// The tallest bar, or the tallest stack.
    private var maximum: Double {
        if stacked {
            return categories.indices.map { c in series.reduce(0) { $0 + (c < $1.values.count ? $1.values[c] : 0) } }.max() ?? 0
        }
        return series.flatMap(\.values).max() ?? 0
    }

    /// One swatch and name per series, in a row under the title.
    private func legend() -> String {
        var out = "<g class=\"legend\">"
        var x = Self.inset
        for entry in series {
            out += "<rect x=\"\(Self.number(x))\" y=\"32\" width=\"12\" height=\"12\" fill=\"\(entry.colour.htmlEscaped)\"/>"
            out += text(entry.name, x: x + 18, y: 43, attributes: "class=\"legend-label\"")
            // No text measuring without a browser: an average glyph width keeps the entries apart.
            x += 18 + Double(entry.name.count) * 7.5 + 22
        }
        return out + "</g>"
    }

    private func text(_ content: String, x: Double, y: Double, attributes: String) -> String {
        "<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" \(attributes)>\(content.htmlEscaped)</text>"
    }

    private static func y(_ value: Double, top: Double) -> Double {
        Self.top + plotHeight * (1 - value / top)
    }

    /// Gridline values from 0 in steps of 1, 2 or 5 times a power of ten, about four steps, the last at or above `maximum`.
    static func ticks(upTo maximum: Double) -> [Double] {
        guard maximum > 0 else { return [0, 1] }
        var magnitude = 1.0
        while magnitude * 10 <= maximum / 4 { magnitude *= 10 }
        while magnitude > maximum / 4 { magnitude /= 10 }
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 * 4 >= maximum } ?? magnitude * 10
        let count = Int((maximum / step).rounded(.up))
        return (0...count).map { Double($0) * step }
    }

    /// A coordinate with at most one decimal, so output is stable and short.
    static func number(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
    }
}

extension String {
    /// The text with `& < > " '` written as character references, safe as HTML or SVG content and inside quoted attributes.
    var htmlEscaped: String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for character in self {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
