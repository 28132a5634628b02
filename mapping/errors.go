package mapping

import (
	"errors"
	"fmt"
)

// ErrInvalidEvent is wrapped by every error that Decode returns: the message
// is not a valid Segment event and belongs in the dead letters. The wrapping
// error's text says why, in words meant for an operator.
var ErrInvalidEvent = errors.New("invalid event")

// ErrInvalidSettings is wrapped by every error that ParseSettings and
// Settings.Validate return. The text names the offending field with its
// JSON path, for example "contactMappings[1].value.label: required".
var ErrInvalidSettings = errors.New("invalid settings")

func invalidEvent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

// FieldError is a settings problem tied to one field.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "caseMappings[0].value.property".
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap lets errors.Is(err, ErrInvalidSettings) match a FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalidSettings }

// ErrNotFound is returned by stores when the requested document (or other
// row) does not exist or has expired.
var ErrNotFound = errors.New("not found")

// ErrRejected is wrapped by a store's error when storage or rendering
// refused a batch's content, an error that retrying cannot change: a value
// Postgres will not hold (a data exception, a program limit, a check
// violation) or a document that cannot be encoded. The pipeline then finds
// the messages responsible and makes them dead letters; every other store
// error is taken as transient and retried.
var ErrRejected = errors.New("refused by storage")
