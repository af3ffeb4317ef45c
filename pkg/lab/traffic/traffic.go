// Package traffic is the shape of realistic traffic shared by the data
// generator eye-gen and the load generator loadgen: skewed categories
// (page views dominate), each with skewed names, and the sites, browsers,
// referrers, page sections, locales and viewports events come from.
package traffic

// Weighted is a name and its relative weight.
type Weighted struct {
	Name   string
	Weight float64
}

// Category is an event category, its relative weight and its names.
type Category struct {
	Name   string
	Weight float64
	Names  []Weighted
}

// Categories are the event categories with their names, skewed: page
// views dominate, some names are rare.
var Categories = []Category{
	{"page interaction", 55, []Weighted{{"pageview", 60}, {"cta click", 15}, {"scroll", 12}, {"video play", 5}, {"outbound click", 4}, {"share", 4}}},
	{"form interaction", 20, []Weighted{{"focus", 35}, {"change", 35}, {"submit", 15}, {"validation error", 10}, {"abandon", 5}}},
	{"search", 10, []Weighted{{"query", 50}, {"filter", 25}, {"result click", 20}, {"no results", 5}}},
	{"commerce", 8, []Weighted{{"product view", 50}, {"add to cart", 20}, {"remove from cart", 5}, {"checkout start", 15}, {"purchase", 10}}},
	{"account", 4, []Weighted{{"login", 50}, {"logout", 20}, {"signup", 20}, {"password reset", 10}}},
	{"error", 2, []Weighted{{"js error", 70}, {"api error", 30}}},
	{"performance", 1, []Weighted{{"web vitals", 80}, {"long task", 20}}},
}

var (
	// Sites name the applications' web sites.
	Sites = []string{"shop", "news", "travel", "bank", "games", "recipes", "cars", "homes", "jobs", "music", "health", "sports"}
	// UserAgents are the browsers sessions run in.
	UserAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	}
	// Referrers are where visitors come from ("": direct).
	Referrers = []string{"https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://t.co/", "https://www.facebook.com/", ""}
	// Sections are the first element of page paths.
	Sections = []string{"products", "articles", "offers", "reviews", "category", "help"}
	// Locales are the browsers' languages.
	Locales = []string{"en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP"}
	// Viewports are the browsers' window sizes, width and height.
	Viewports = [][2]int{{1920, 1080}, {1440, 900}, {1366, 768}, {390, 844}, {412, 915}, {768, 1024}}
)
