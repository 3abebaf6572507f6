module github.com/moov-io/iso8583

go 1.25.0

require (
	github.com/yerden/go-util v1.1.4
	golang.org/x/text v0.41.0
)
