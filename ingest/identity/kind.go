// Package identity normalises and validates personal identifiers (phone
// numbers, emails, resident identity numbers, ...) so that two spellings of
// the same identifier become the same bytes, and decides which columns of a
// record hold which kind.
package identity

// Kind names a class of identifier. Its string is the key used in JSON
// output ("phone", "email", "cn_id", ...) and in the index shards.
type Kind string

const (
	Phone    Kind = "phone"     // E.164: +86 and 11 digits for Chinese mobiles
	Email    Kind = "email"     // lower-cased whole address
	CNID     Kind = "cn_id"     // 18-character resident identity number
	BankCard Kind = "bank_card" // digits only: issuer range, length and Luhn valid
)

// Sighting is one normalised identifier seen in a dataset: Value is the
// canonical form, Loc where it was seen ("line 12", "table users row 5",
// "member a.csv line 3"). Sightings are what the dedupe and the index consume.
type Sighting struct {
	Kind  Kind
	Value string
	Loc   string
}
