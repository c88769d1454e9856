"""The static, bilingual report site (`athar publish site`)."""
