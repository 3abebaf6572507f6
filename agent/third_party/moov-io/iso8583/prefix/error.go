package prefix

const fieldLengthIsLargerThanMax = "field length: %d is larger than maximum: %d"
const numberOfDigitsInLengthExceeds = "number of digits in length: %d exceeds: %d"
const notEnoughDataToRead = "not enough data length: %d to read: %d byte digits"
const invalidLength = "invalid length: %d"
const dataLengthIsLargerThanMax = "data length: %d is larger than maximum %d"
const fieldLengthShouldBeFixed = "field length: %d should be fixed: %d"
